// README.md's generated blocks: `<!-- <name>:start -->` … `<!-- <name>:end -->`, rewritten by
// `npm run bench` and left alone everywhere else.

/** Replaces the text between `<!-- <name>:start -->` and `<!-- <name>:end -->` (markers kept). */
export function replaceBlock(text: string, name: string, body: string): string {
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  if (i < 0 || j < 0 || j < i) throw new Error(`README.md has no ${start} … ${end} block`);
  return `${text.slice(0, i + start.length)}\n${body.trim()}\n${text.slice(j)}`;
}
