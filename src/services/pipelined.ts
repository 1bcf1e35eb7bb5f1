/**
 * Answers a stream of requests with at most `maxInFlight` of them worked on at once, each answer
 * handed out as soon as it is ready (so possibly in another order than the requests). A request
 * is in flight from when it is read until its answer has been taken by the consumer (the
 * transport writes it, waiting for the peer when its buffers are full): past the bound, no more
 * requests are read, and the transport's flow control holds the sender back.
 *
 * `answer` must not throw nor reject: a failed request is an answer too.
 */
export async function* pipelined<I, O>(requests: AsyncIterable<I>, answer: (request: I) => O | PromiseLike<O>, maxInFlight: number): AsyncGenerator<O> {
  const iterator = requests[Symbol.asyncIterator]();
  const ready: O[] = [];
  let inFlight = 0;
  let readerDone = false;
  let stopped = false;
  let failure: { error: unknown } | undefined;
  let wakeConsumer: (() => void) | undefined;
  let wakeReader: (() => void) | undefined;

  const notify = () => {
    const wake = wakeConsumer;
    wakeConsumer = undefined;
    wake?.();
  };
  const settle = (out: O) => {
    ready.push(out);
    notify();
  };
  const fail = (error: unknown) => {
    failure ??= { error };
    notify();
  };

  const read = async () => {
    try {
      while (!stopped) {
        const next = await iterator.next();
        if (next.done || stopped) break;
        inFlight++;
        const out = answer(next.value);
        if (isThenable(out)) out.then(settle, fail);
        else settle(out);
        if (inFlight >= maxInFlight) await new Promise<void>((resolve) => (wakeReader = resolve));
      }
    } catch (error) {
      fail(error);
    } finally {
      readerDone = true;
      notify();
    }
  };
  void read();

  try {
    while (true) {
      if (ready.length > 0) {
        yield ready.shift() as O;
        inFlight--;
        const wake = wakeReader;
        if (wake && inFlight < maxInFlight) {
          wakeReader = undefined;
          wake();
        }
        continue;
      }
      if (failure) throw failure.error;
      if (readerDone && inFlight === 0) return;
      await new Promise<void>((resolve) => (wakeConsumer = resolve));
    }
  } finally {
    // The consumer went away (the call was cancelled or failed): read no more.
    stopped = true;
    wakeReader?.();
    if (!readerDone) void iterator.return?.()?.catch?.(() => {});
  }
}

function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as PromiseLike<T> | undefined)?.then === "function";
}
