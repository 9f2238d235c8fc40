import { HttpTransportType, HubConnection, HubConnectionBuilder, HubConnectionState, LogLevel } from '@microsoft/signalr';
import { api, loadHistory } from './api';
import { hubToken } from './auth';
import type { StreamEvent } from './types';

export type LinkStatus = 'connecting' | 'live' | 'reconnecting' | 'offline';

/**
 * Follows one job: history from the REST API first, then the live stream from /hubs/training, continuing after the
 * last seq it holds. It reconnects by itself for as long as the page is open (network drop, server restart) and
 * resubscribes after its last seq; events it already holds are dropped by seq, and a gap, should one ever appear,
 * is filled from the history before anything after it is delivered. So `onEvents` sees seq 1, 2, 3, … exactly once,
 * told whether they came from the history or live from the stream. When a run resumed from a checkpoint replaced
 * events already delivered (the job's worker died after its last checkpoint), the server says Rewind and `onRewind`
 * is told from which seq on the events held are void.
 */
export class JobFollower {
  private connection?: HubConnection;
  private lastSeq = 0;
  /** The attempt of the last state event held: the server tells from it which events held a later run replaced. */
  private lastAttempt = 0;
  private filling?: Promise<void>;
  private queued: StreamEvent[] = [];
  private closed = false;
  private readonly abort = new AbortController();

  constructor(
    private readonly jobId: string,
    private readonly onEvents: (events: StreamEvent[], live: boolean) => void,
    private readonly onStatus: (status: LinkStatus) => void,
    private readonly onRewind: (afterSeq: number) => void = () => undefined,
  ) {}

  get seq() {
    return this.lastSeq;
  }

  /** Loads history up to `upTo` (the job's lastSeq from GET /jobs/{id}), calls `loaded`, then goes live. */
  async start(upTo: number, loaded: () => void) {
    this.onStatus('connecting');
    await loadHistory(this.jobId, 0, upTo, (page) => this.accept(page, false), this.abort.signal);
    if (this.closed) return;
    loaded();
    const connection = new HubConnectionBuilder()
      // WebSockets straight away, no negotiate request: the whole connection is one request, so behind a load balancer
      // it stays on the node it reached and needs no sticky sessions (negotiate, then connect, may reach two nodes).
      .withUrl('hubs/training', { accessTokenFactory: hubToken, transport: HttpTransportType.WebSockets, skipNegotiation: true })
      .withAutomaticReconnect({
        nextRetryDelayInMilliseconds: (c) => {
          this.checkRefusal();
          return Math.min(250 * 2 ** c.previousRetryCount, 3000);
        },
      })
      .configureLogging(LogLevel.Warning)
      .build();
    this.connection = connection;
    connection.on('Events', (jobId: string, events: StreamEvent[]) => {
      if (jobId === this.jobId) this.receive(events);
    });
    connection.on('Rewind', (jobId: string, afterSeq: number) => {
      if (jobId !== this.jobId || afterSeq >= this.lastSeq) return;
      this.lastSeq = afterSeq;
      this.queued = this.queued.filter((e) => e.seq <= afterSeq);
      this.onRewind(afterSeq);
    });
    connection.onreconnecting(() => this.onStatus('reconnecting'));
    connection.onreconnected(() => this.subscribe());
    connection.onclose(() => {
      if (!this.closed) void this.connectLoop();
    });
    await this.connectLoop();
  }

  close() {
    this.closed = true;
    this.abort.abort();
    void this.connection?.stop();
  }

  private async connectLoop() {
    for (let attempt = 0; !this.closed; attempt++) {
      try {
        if (this.connection!.state === HubConnectionState.Disconnected) await this.connection!.start();
        await this.subscribe();
        return;
      } catch {
        this.checkRefusal();
        this.onStatus('offline');
        await new Promise((r) => setTimeout(r, Math.min(250 * 2 ** attempt, 3000)));
      }
    }
  }

  /**
   * A connection refused for its credential (a revoked key or share link: the service also closes the connections
   * open with it) would retry for ever: asking the REST API brings the sign-in form with the server's reason. A
   * WebSocket that fails to open tells the page no status at all, so every failed attempt asks (at most one request
   * per retry, 3 s apart at most).
   */
  private checkRefusal() {
    void api.job(this.jobId).catch(() => undefined);
  }

  private async subscribe() {
    await this.filling;
    await this.invokeSubscribe();
    this.onStatus('live');
  }

  /** After the last seq held, saying which run wrote the last state event held (so replaced events are named: Rewind). */
  private invokeSubscribe() {
    return this.connection!.invoke('SubscribeAfter', this.jobId, this.lastSeq, this.lastAttempt);
  }

  private receive(events: StreamEvent[]) {
    if (this.filling) {
      this.queued.push(...events);
      return;
    }
    const first = events.find((e) => e.seq > this.lastSeq);
    if (first && first.seq > this.lastSeq + 1) {
      this.queued.push(...events);
      this.filling = this.fill(first.seq - 1);
      return;
    }
    this.accept(events, true);
  }

  /** Fetches what is missing up to `upTo` from the history, then delivers what arrived meanwhile. */
  private async fill(upTo: number) {
    let queued: StreamEvent[] = [];
    try {
      await loadHistory(this.jobId, this.lastSeq, upTo, (page) => this.accept(page, false), this.abort.signal);
      queued = this.queued;
    } catch {
      // The history is unreachable right now: forget what arrived after the gap and ask the stream to start over
      // after the last seq held (the subscription replaces the old one; a dead connection reconnects and does it).
      if (this.connection) void this.invokeSubscribe().catch(() => undefined);
    } finally {
      this.filling = undefined;
      this.queued = [];
    }
    if (queued.length > 0) this.receive(queued);
  }

  private accept(events: StreamEvent[], live: boolean) {
    let start = 0;
    while (start < events.length && events[start].seq <= this.lastSeq) start++;
    if (start === events.length) return;
    const fresh = start === 0 ? events : events.slice(start);
    this.lastSeq = fresh[fresh.length - 1].seq;
    for (const e of fresh) if (e.attempt !== undefined && e.attempt !== null) this.lastAttempt = e.attempt;
    this.onEvents(fresh, live);
  }
}

/**
 * Several jobs' live events over one hub connection — a sweep's active trials — each after the seq its caller already
 * holds (the caller read what came before from the history). It reconnects by itself and subscribes every job again
 * after its last seq. A job whose events cannot continue in order (a seq skipped, or a Rewind: a resumed run replaced
 * some) is dropped and handed to `onStale`, for the caller to read again and follow anew.
 */
export class LiveJobs {
  private connection?: HubConnection;
  private connecting?: Promise<void>;
  private readonly jobs = new Map<string, { seq: number; attempt: number }>();
  private closed = false;

  constructor(
    private readonly onEvents: (jobId: string, events: StreamEvent[]) => void,
    private readonly onStale: (jobId: string) => void,
    private readonly onStatus: (status: LinkStatus) => void = () => undefined,
  ) {}

  get following(): ReadonlySet<string> {
    return new Set(this.jobs.keys());
  }

  /** Follows a job after `afterSeq`, written by run `attempt` (GET /jobs/{id}'s lastSeq and attempt). */
  follow(jobId: string, afterSeq: number, attempt: number) {
    if (this.closed) return;
    this.jobs.set(jobId, { seq: afterSeq, attempt });
    void this.subscribe(jobId);
  }

  unfollow(jobId: string) {
    if (!this.jobs.delete(jobId)) return;
    if (this.connection?.state === HubConnectionState.Connected) void this.connection.invoke('Unsubscribe', jobId).catch(() => undefined);
  }

  close() {
    this.closed = true;
    this.jobs.clear();
    void this.connection?.stop();
  }

  private async subscribe(jobId: string) {
    try {
      await this.connect();
      const held = this.jobs.get(jobId);
      if (held && !this.closed) await this.connection!.invoke('SubscribeAfter', jobId, held.seq, held.attempt);
    } catch {
      // Not connected now: the reconnection subscribes every job again.
    }
  }

  private connect(): Promise<void> {
    if (this.connection?.state === HubConnectionState.Connected) return Promise.resolve();
    if (this.connecting) return this.connecting;
    if (this.connection && this.connection.state !== HubConnectionState.Disconnected) {
      return Promise.reject(new Error('reconnecting')); // reconnected, it subscribes every job again
    }
    if (!this.connection) {
      const connection = new HubConnectionBuilder()
        .withUrl('hubs/training', { accessTokenFactory: hubToken, transport: HttpTransportType.WebSockets, skipNegotiation: true })
        .withAutomaticReconnect({ nextRetryDelayInMilliseconds: (c) => Math.min(250 * 2 ** c.previousRetryCount, 3000) })
        .configureLogging(LogLevel.Warning)
        .build();
      connection.on('Events', (jobId: string, events: StreamEvent[]) => this.receive(jobId, events));
      connection.on('Rewind', (jobId: string) => this.stale(jobId));
      connection.onreconnecting(() => this.onStatus('reconnecting'));
      connection.onreconnected(() => {
        this.onStatus('live');
        for (const jobId of this.jobs.keys()) void this.subscribe(jobId);
      });
      connection.onclose(() => {
        this.onStatus('offline');
        if (!this.closed && this.jobs.size > 0) setTimeout(() => { for (const jobId of this.jobs.keys()) void this.subscribe(jobId); }, 3000);
      });
      this.connection = connection;
    }
    this.onStatus('connecting');
    this.connecting = this.connection.start()
      .then(() => this.onStatus('live'))
      .catch((err) => { this.onStatus('offline'); throw err; })
      .finally(() => { this.connecting = undefined; });
    return this.connecting;
  }

  private receive(jobId: string, events: StreamEvent[]) {
    const held = this.jobs.get(jobId);
    if (!held) return;
    let start = 0;
    while (start < events.length && events[start].seq <= held.seq) start++;
    if (start === events.length) return;
    if (events[start].seq !== held.seq + 1) return this.stale(jobId);
    const fresh = start === 0 ? events : events.slice(start);
    held.seq = fresh[fresh.length - 1].seq;
    for (const e of fresh) if (typeof e.attempt === 'number') held.attempt = e.attempt;
    this.onEvents(jobId, fresh);
  }

  private stale(jobId: string) {
    if (!this.jobs.has(jobId)) return;
    this.unfollow(jobId);
    this.onStale(jobId);
  }
}
