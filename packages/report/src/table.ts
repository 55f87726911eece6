/** Plain-text and GitHub-markdown tables; numeric-looking columns are right-aligned. */
export type Align = 'left' | 'right';

export interface Table {
  headers: string[];
  rows: string[][];
  /** Per column; default left. */
  align?: Align[];
}

/** Aligned columns separated by two spaces, a dashed rule under the header; no colors. */
export function renderText(table: Table, indent = ''): string {
  const widths = table.headers.map((header, i) => Math.max(width(header), ...table.rows.map((row) => width(row[i] ?? ''))));
  const line = (cells: string[]): string =>
    indent +
    cells
      .map((cell, i) => {
        const pad = ' '.repeat(widths[i]! - width(cell));
        return table.align?.[i] === 'right' ? pad + cell : cell + pad;
      })
      .join('  ')
      .trimEnd();
  const rule = indent + widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(table.headers), rule, ...table.rows.map((row) => line(table.headers.map((_, i) => row[i] ?? '')))].join('\n');
}

export function renderMarkdown(table: Table): string {
  const escape = (cell: string): string => cell.replace(/\|/g, '\\|').replace(/\n/g, ' ') || ' ';
  const separator = table.headers.map((_, i) => (table.align?.[i] === 'right' ? '---:' : '---'));
  return [
    `| ${table.headers.map(escape).join(' | ')} |`,
    `| ${separator.join(' | ')} |`,
    ...table.rows.map((row) => `| ${table.headers.map((_, i) => escape(row[i] ?? '')).join(' | ')} |`),
  ].join('\n');
}

/** Display width: code points, so "—" and "±" count as one column. */
function width(text: string): number {
  return [...text].length;
}
