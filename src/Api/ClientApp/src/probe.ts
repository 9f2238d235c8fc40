/**
 * What the dashboard knows about itself, readable from the browser console and by the browser tests and the latency
 * benchmark (window.trainingDashboard): the followed job's seq, steps, gaps, and per-step latency from the server's
 * step time to the frame that drew it.
 */
export const probe = {
  job: null as null | { id: string; seq: number; steps: number; lastStep: number; gaps: number; repeatedSteps: number; state: string; link: string },
  /** Milliseconds from a step's server timestamp to the end of the animation frame that drew it (live steps only). */
  latencies: [] as number[],
  /** Milliseconds from opening the job page to its history being drawn. */
  historyMs: NaN,
  /** Where the time went: JSON parsing of responses, handling events (storing them), drawing charts (ms). */
  timings: { parseMs: 0, handleMs: 0, drawMs: 0, historyMs: 0 },
  /**
   * The sweep page: the state it shows, each drawn trial's points (loss per step, the metric per epoch) and whether the
   * hub follows it, how many trials were left out of the curves, and the parallel plot's axes and where each line sits.
   */
  sweep: null as null | {
    id: string;
    state: string;
    trials: { index: number; jobId: string; lossPoints: number; metricPoints: number; lastStep: number; state: string }[];
    leftOut: number;
    axes: string[];
    lines: { trial: number; best: boolean; at: (number | null)[] }[];
  },
  /**
   * The compare page's last drawing, in ms since the page opened (views read, last history in, drawn) or spent (parsing
   * the histories, summed; aligning them), a zoom's detail (ms from the zoom to its rows in hand), and the x values
   * drawn from (the points of all jobs, aligned) before any zoom and now.
   */
  compare: {} as { viewsMs?: number; fetchedMs?: number; parseMs?: number; alignMs?: number; drawnMs?: number; zoomDetailMs?: number; points?: number; overviewPoints?: number },
};

(window as unknown as { trainingDashboard: typeof probe }).trainingDashboard = probe;
