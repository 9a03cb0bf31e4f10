/**
 * Go's text/tabwriter, the part Cilium's tables use (left-aligned, space padding, no flags): the
 * input is lines of tab-terminated cells plus trailing text; a column is as wide as its widest cell
 * plus `padding` (at least `minwidth`) within a block of consecutive lines that have that column.
 * Every tab-terminated cell is padded, trailing cells included, so lines can end in spaces exactly as
 * `cilium endpoint list` prints them. Widths count UTF-16 units (Go counts runes: same for ASCII).
 * Port of go/src/text/tabwriter/tabwriter.go `format` / `writeLines`.
 */
export interface TabwriterOptions {
  readonly minwidth: number;
  readonly padding: number;
}

export function tabwrite(text: string, o: TabwriterOptions): string {
  const pieces = text.split('\n');
  const trailing = pieces.pop() as string;
  const lines = pieces.map((l) => l.split('\t'));
  let out = '';
  const widths: number[] = [];
  const writeLines = (line0: number, line1: number) => {
    for (let i = line0; i < line1; i++) {
      const cells = lines[i] as string[];
      cells.forEach((c, j) => {
        out += c;
        // The last piece is trailing text, never padded (Go: only cells j < len(widths)).
        if (j < cells.length - 1 && j < widths.length) out += ' '.repeat(Math.max(0, (widths[j] as number) - c.length));
      });
      out += '\n';
    }
  };
  const format = (line0: number, line1: number) => {
    const column = widths.length;
    for (let ln = line0; ln < line1; ln++) {
      if (column >= (lines[ln] as string[]).length - 1) continue;
      writeLines(line0, ln);
      line0 = ln;
      let width = o.minwidth;
      for (; ln < line1; ln++) {
        const cells = lines[ln] as string[];
        if (column >= cells.length - 1) break;
        width = Math.max(width, (cells[column] as string).length + o.padding);
      }
      widths.push(width);
      format(line0, ln);
      widths.pop();
      line0 = ln;
    }
    writeLines(line0, line1);
  };
  format(0, lines.length);
  return out + trailing;
}
