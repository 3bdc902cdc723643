// Server-sent events from a fetch response body (EventSource cannot send the Authorization header).
// Yields { event, data } per event, as the SSE specification frames them: lines up to a blank line,
// "event:" names it ("message" by default), "data:" lines are joined with "\n", ":" lines are comments.

export async function* serverSentEvents(body, { signal } = {}) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  const abort = () => reader.cancel().catch(() => {});
  signal?.addEventListener("abort", abort, { once: true });
  let buffer = "";
  let event = "message";
  let data = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.search(/\r\n|\r|\n/)) >= 0) {
        if (end === buffer.length - 1 && buffer[end] === "\r") break; // "\r\n" split across reads
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + (buffer.startsWith("\r\n", end) ? 2 : 1));
        if (line === "") {
          if (data.length) yield { event, data: data.join("\n") };
          event = "message";
          data = [];
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let text = colon < 0 ? "" : line.slice(colon + 1);
        if (text.startsWith(" ")) text = text.slice(1);
        if (field === "event") event = text || "message";
        else if (field === "data") data.push(text);
      }
    }
  } finally {
    signal?.removeEventListener("abort", abort);
    try { reader.releaseLock(); } catch { /* a read was still pending: the stream is cancelled */ }
  }
}
