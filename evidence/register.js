// The evidence engine's TypeScript loader (`node -r evidence/register.js evidence/cli.ts`): a
// require hook for .ts files through transpileCache.js. A build starts six engine processes, four
// of them at once on its critical path, and Sucrase's own hook spent 0.27 s of CPU in each
// transpiling the same files again. The engine's types are checked by `npm test`, never at run time.
"use strict";
const { addHook } = require("pirates");
const { cachedTranspile } = require("./transpileCache");

addHook((code, filePath) => cachedTranspile(code, filePath), { exts: [".ts"] });
