// The bench's progress lines: on stderr, so stdout stays the Markdown report.
export function say(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}
