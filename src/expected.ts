/** The one message shape of every validation error, and the longest timer. */

/** Longest delay a Node timer takes (2^31 - 1 ms); a longer one fires at once. */
export const maxTimerMs = 2_147_483_647;

function show(value: unknown): string {
  let text: string;
  if (typeof value === 'string') text = JSON.stringify(value);
  else if (typeof value === 'function') text = `[Function ${value.name || 'anonymous'}]`;
  else if (typeof value === 'bigint') text = `${value}n`;
  else if (typeof value === 'symbol' || value === undefined || (typeof value === 'number' && !Number.isFinite(value))) text = String(value);
  else {
    try {
      text = JSON.stringify(value) ?? String(value);
    } catch {
      text = Object.prototype.toString.call(value);
    }
  }
  const type = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
  return `\`${text.length > 60 ? `${text.slice(0, 57)}...` : text}\` (${type})`;
}

/** The one message shape of every validation error. */
export function expected(name: string, what: string, value: unknown): string {
  return `Expected \`${name}\` to be ${what}, got ${show(value)}`;
}
