/** Numbers and durations as the progress bar and the summary show them. */

/** `1234567` → `1,234,567`. */
export function formatCount(count: number): string {
  return count.toLocaleString('en-US');
}

/** Items per second, with a precision that suits its size. */
export function formatRate(items: number, ms: number): string {
  if (ms <= 0) return '–';
  const rate = (items * 1000) / ms;
  return rate >= 100 ? formatCount(Math.round(rate)) : rate.toFixed(rate >= 10 ? 1 : 2);
}

/** `840` → `0.84 s`, `75_000` → `1m15s`, `4_000_000` → `1h06m`. */
export function formatDuration(ms: number): string {
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  const whole = Math.round(seconds);
  if (whole < 3600) return `${Math.floor(whole / 60)}m${String(whole % 60).padStart(2, '0')}s`;
  return `${Math.floor(whole / 3600)}h${String(Math.floor((whole % 3600) / 60)).padStart(2, '0')}m`;
}

/** Bytes as MiB. */
export function formatMiB(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
}

/** Time left, coarse: `4s`, `1m15s`. */
export function formatEta(ms: number): string {
  return ms < 60_000 ? `${Math.ceil(ms / 1000)}s` : formatDuration(ms);
}
