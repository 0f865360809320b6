/**
 * Text from peers on root's terminal (issue 14, item 7): control characters
 * (C0, DEL, C1) and the Unicode bidirectional overrides can move the cursor,
 * rewrite what was printed, ring the bell or reorder a line. Gossip refuses
 * them at the edge (agent/gossip/validate.ts); what is printed (status, plain
 * logs, the systemd STATUS line) is escaped with this too, whatever its source.
 */

/** The characters no peer string may hold, and none of ours is printed with. */
export const UNSAFE_CHARS = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
const UNSAFE_ALL = new RegExp(UNSAFE_CHARS.source, 'g');

const SHORT: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** `text` with every unsafe character written as \n, \r, \t, \xNN or \uNNNN. */
export function printable(text: string): string {
  return text.replace(UNSAFE_ALL, (c) => {
    const short = SHORT[c];
    if (short) return short;
    const code = c.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}
