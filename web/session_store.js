// The Lens's own session, kept in localStorage as it changes, so that a reload, a crash or a
// restart loses nothing typed: the state (as a share link carries it: prompts, view,
// selection, notebook cells) plus the drafts of the prompt fields not yet run.
//
//   neuroscope:lens:session    {savedAt, state, drafts}     the session of this profile
//   neuroscope:lens:previous   [{savedAt, state, drafts}]   sessions a share link replaced on
//                              screen (newest first, at most MAX_PREVIOUS), for "Restore"
//
// Reading never throws: a corrupt entry is reported (`problem`) and left in place, so that
// nothing is overwritten before the user has seen the message.

export const SESSION_KEY = "neuroscope:lens:session";
export const PREVIOUS_KEY = "neuroscope:lens:previous";
export const MAX_PREVIOUS = 5;

function storage() {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null; // storage disabled for this page
  }
}

// {entry: {savedAt, state, drafts} | null, problem: string | null}
export function readSession() {
  const store = storage();
  const text = store?.getItem(SESSION_KEY);
  if (!text) return { entry: null, problem: null };
  try {
    const entry = JSON.parse(text);
    if (!entry || typeof entry !== "object" || !entry.state) throw new Error("no state in it");
    return { entry, problem: null };
  } catch (error) {
    return { entry: null, problem: `the saved session could not be read (${error.message})` };
  }
}

// Saves the session; returns null, or the error message (quota, storage disabled).
export function writeSession(state, drafts = {}) {
  const store = storage();
  if (!store) return "this browser keeps no local storage for this page";
  try {
    store.setItem(SESSION_KEY, JSON.stringify({ savedAt: new Date().toISOString(), state, drafts }));
    return null;
  } catch (error) {
    return `${error.name}: ${error.message}`;
  }
}

export function previousSessions() {
  try {
    const list = JSON.parse(storage()?.getItem(PREVIOUS_KEY) ?? "[]");
    return Array.isArray(list) ? list.filter((entry) => entry && entry.state) : [];
  } catch {
    return [];
  }
}

// Keeps `entry` (a session a link is about to replace on screen) for a later restore.
export function keepPrevious(entry) {
  return setPrevious([entry, ...previousSessions()]);
}

export function setPrevious(entries) {
  const list = entries.slice(0, MAX_PREVIOUS);
  try {
    storage()?.setItem(PREVIOUS_KEY, JSON.stringify(list));
    return null;
  } catch (error) {
    return `${error.name}: ${error.message}`;
  }
}

// Whether two states differ in what a person made: prompts, view, selection, cells.
export function differs(a, b) {
  const pick = (state) => JSON.stringify([state.prompt, state.corrupted, state.answer, state.wrong, state.view,
    state.selection, state.notebook]);
  return pick(a) !== pick(b);
}
