// Alert sounds made with WebAudio (no audio files). Browsers only allow sound after a user
// gesture; the console calls unlock() from the login click and the sound toggle.

let ctx = null;

export function unlock() {
  try {
    ctx ??= new (window.AudioContext || window.webkitAudioContext)();
    if (ctx.state === "suspended") ctx.resume();
  } catch {
    ctx = null;
  }
}

const PATTERNS = {
  // [frequency Hz, start s, length s]
  chat: [
    [660, 0, 0.12],
    [880, 0.14, 0.16],
  ],
  urgent: [
    [988, 0, 0.14],
    [740, 0.16, 0.14],
    [988, 0.32, 0.14],
    [740, 0.48, 0.14],
    [988, 0.64, 0.22],
  ],
  message: [[740, 0, 0.08]],
};

/** Play one of the patterns: "chat" (new chat), "urgent" (stronger), "message" (soft). */
export function beep(kind = "chat") {
  if (!ctx) return;
  const now = ctx.currentTime;
  const loud = kind === "urgent" ? 0.22 : kind === "message" ? 0.06 : 0.12;
  for (const [freq, start, length] of PATTERNS[kind] || PATTERNS.chat) {
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.type = kind === "urgent" ? "square" : "sine";
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, now + start);
    gain.gain.exponentialRampToValueAtTime(loud, now + start + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, now + start + length);
    osc.connect(gain).connect(ctx.destination);
    osc.start(now + start);
    osc.stop(now + start + length + 0.02);
  }
}
