import { createHash } from "node:crypto";
import { readFileSync, watch, type FSWatcher } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, dirname, resolve } from "node:path";

/**
 * Watching gateway.yaml for changes. The watch is on the file's directory,
 * not the file: editors save by writing a temporary file and renaming it
 * over the original, and Kubernetes updates a mounted ConfigMap by swapping
 * a `..data` symlink, so a watch on the file itself would keep following the
 * old, replaced inode and go quiet after the first save.
 *
 * Events are only hints. After a quiet period the file is read and its
 * content compared with the last content seen: a save that fires five
 * events, a `touch`, or a file that vanishes for a moment during a replace
 * produce one signal or none, never a signal for a missing file.
 */

/** WatchConfigOptions tune watchConfigFile. */
export interface WatchConfigOptions {
  /** debounceMs is how long the directory must be quiet before the file is checked; default 100. */
  debounceMs?: number;
  /** onError receives watcher failures (such as the directory being removed); default: ignored. */
  onError?: (err: Error) => void;
}

/** ConfigWatcher is a running watch; close stops it. */
export interface ConfigWatcher {
  /** close stops watching; no onChange call happens after it returns. */
  close(): void;
}

/**
 * watchConfigFile calls onChange when the content of the file at path
 * changes, however it was changed (in-place write, rename-replace,
 * delete-and-recreate, symlink swap). It does not call onChange for the
 * initial content, nor while the file is missing; reading and validating
 * the new file is the caller's job. It throws if the file's directory does
 * not exist, since then there is nothing to watch.
 */
export function watchConfigFile(path: string, onChange: () => void, options: WatchConfigOptions = {}): ConfigWatcher {
  const file = resolve(path);
  const dir = dirname(file);
  const name = basename(file);
  const debounceMs = options.debounceMs ?? 100;

  let last = fingerprintSync(file);
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let checking = false;
  let recheck = false;

  const check = async () => {
    if (checking) {
      // A check is reading the file; look again when it is done, so an
      // event that arrived meanwhile is not lost.
      recheck = true;
      return;
    }
    checking = true;
    try {
      const current = await fingerprint(file);
      // Missing (mid-replace) or unreadable: keep the last content seen; the
      // event that brings the file back will trigger another check.
      if (closed || current === undefined || current === last) return;
      last = current;
      onChange();
    } finally {
      checking = false;
      if (recheck && !closed) {
        recheck = false;
        schedule();
      }
    }
  };

  const schedule = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      void check();
    }, debounceMs);
    // The watch must not keep a process alive that is otherwise done.
    timer.unref();
  };

  const watcher: FSWatcher = watch(dir, { persistent: false }, (_event, changed) => {
    if (closed) return;
    // filename can be null on some platforms; "..data" and friends are the
    // ConfigMap symlink swap. Anything else in the directory is not ours.
    if (changed === null || changed === name || changed.startsWith("..")) schedule();
  });
  watcher.on("error", (err) => options.onError?.(err));

  return {
    close() {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      watcher.close();
    },
  };
}

function digest(content: Buffer): string {
  return createHash("sha256").update(content).digest("hex");
}

function fingerprintSync(file: string): string | undefined {
  try {
    return digest(readFileSync(file));
  } catch {
    return undefined;
  }
}

async function fingerprint(file: string): Promise<string | undefined> {
  try {
    // readFile follows symlinks, so a ConfigMap's ..data swap reads the new target.
    return digest(await readFile(file));
  } catch {
    return undefined;
  }
}
