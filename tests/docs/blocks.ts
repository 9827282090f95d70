/**
 * Fenced code blocks of the project's Markdown, each with the twin comment above it (`<!-- twin: PATH … -->`):
 * what tests/docs/ checks.
 *
 * @module
 */

const ROOT = new URL("../../", import.meta.url).pathname;

/** A fenced block and the twin comment above it. */
export interface Block {
  lang: string;
  code: string;
  twin?: string;
  line: number;
}

/** The fenced blocks of a Markdown file that have a language, each with the twin comment before it. */
export async function fencedBlocks(path: string): Promise<Block[]> {
  const text = await Deno.readTextFile(`${ROOT}${path}`);
  const blocks: Block[] = [];
  for (const m of text.matchAll(/(?:<!-- twin: (\S+)[^>]*-->\n\n)?```(\w+)\n([\s\S]*?)```/g)) {
    blocks.push({
      lang: m[2],
      code: m[3],
      twin: m[1],
      line: text.slice(0, m.index).split("\n").length,
    });
  }
  return blocks;
}
