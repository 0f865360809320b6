/** A real gc() for memory figures, in whichever thread calls it. */
import * as v8 from 'v8';
import * as vm from 'vm';

/** A real gc() when the flag can be set at run time, else a no-op (memory figures are then noisier). */
export function gcFunction(): () => void {
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    return () => {
      gc();
      gc();
    };
  } catch {
    return () => undefined;
  }
}
