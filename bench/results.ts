/**
 * The shape of `bench/results/latest.json`: every sample of every repetition, the load runs, the
 * control-plane settings with the measured Lease cadence, and the machine.
 *
 * @module
 */
import type { ControlPlaneSettings } from "../tests/harness/control_plane.ts";
import type { ScenarioName } from "./scenarios.ts";
import type { Summary } from "./stats.ts";
import type { MachineInfo } from "./machine.ts";
import type { ApiProbe } from "./api_probe.ts";

/** The modes compared. */
export type ModeName = "ours-fast" | "ours-example" | "origin" | "k3s-tuned" | "k3s-default";

/** All modes, in report order. */
export const MODES: readonly ModeName[] = [
  "ours-fast",
  "ours-example",
  "origin",
  "k3s-tuned",
  "k3s-default",
];

/** Human labels of the modes. */
export const MODE_LABELS: Record<ModeName, string> = {
  "ours-fast": "ours, fast.yaml (10 ms / 30 ms)",
  "ours-example": "ours, example.yaml (30 Hz / 300 ms)",
  origin: "origin algorithm (60 Hz poll, 300 ms, delete pods)",
  "k3s-tuned": "K3s tuned",
  "k3s-default": "K3s default",
};

/** One repetition of one scenario in one mode. Times in ms unless named otherwise. */
export interface Sample {
  mode: ModeName;
  scenario: ScenarioName;
  /** 1-based. */
  rep: number;
  /** False when the fault was not detected (K3s cannot see MQTT-only faults, …). */
  detected: boolean;
  /** Why values are missing, what went wrong, what was unusual. */
  notes: string[];
  /** Wall-clock ms of the fault (publisher's `fault-applied`, or the kwok SIGKILL). */
  faultWallMs?: number;
  /** The expired target and its cause (`deadline`, `offline`). */
  target?: string;
  cause?: string;
  /** Detection: expiry − last heartbeat received. */
  silenceMs?: number;
  /** Detection: lateness of the confirmed expiry beyond the deadline. */
  latenessMs?: number;
  faultToDetectionMs?: number;
  expiryToPromotionSentMs?: number;
  /** Expiry → the last affected workload's promotion received by a subscriber. */
  expiryToPromotionReceivedMs?: number;
  /** Expiry → every API action acknowledged (Events excluded). */
  expiryToActionsMs?: number;
  /** Expiry → every API action and its Event acknowledged. */
  expiryToDoneMs?: number;
  faultToPromotionReceivedMs?: number;
  faultToActionsMs?: number;
  /** Fault → a new pod of every affected primary Deployment Running on a healthy node. */
  faultToReplacementRunningMs?: number;
  /** Where the replacements ran. */
  replacementNodes?: string[];
  /** K3s modes: fault → Ready=Unknown, → unreachable:NoExecute taint, → pods evicted. */
  faultToNotReadyMs?: number;
  faultToTaintMs?: number;
  faultToEvictionMs?: number;
  /** K3s modes: fault − the victim's last Lease renewal, s (the phase in the renewal cycle). */
  leasePhaseS?: number;
  /** Ours: each API action's completion, ms from the start of its plan (max over the plans). */
  actionMs?: Record<string, number>;
  /** Stalls (> 10 ms) of the simulator thread, the broker round trip, the subscriber thread
   * during the repetition; `atMs` from the fault. */
  stalls?: { what: string; ms: number; atMs: number }[];
  /** Healthy targets the runtime expired (a false failure; see the notes). */
  spuriousExpiries?: string[];
  /** Ours: process spawn → `armed` (bench clock), and `armed` on the process's own clock. */
  spawnToArmedMs?: number;
  processArmedMs?: number;
}

/** The metrics of a sample that are reported, in table order. */
export const METRICS: readonly { key: keyof Sample; label: string }[] = [
  { key: "silenceMs", label: "detection: expiry − last heartbeat" },
  { key: "latenessMs", label: "detection lateness beyond the deadline" },
  { key: "faultToDetectionMs", label: "fault → detection (expiry; K3s: NotReady)" },
  { key: "expiryToPromotionReceivedMs", label: "expiry → promotion received" },
  { key: "expiryToActionsMs", label: "expiry → all API actions acknowledged" },
  { key: "expiryToDoneMs", label: "expiry → API actions + Events acknowledged" },
  { key: "faultToPromotionReceivedMs", label: "fault → promotion received" },
  { key: "faultToReplacementRunningMs", label: "fault → replacement Running" },
  { key: "faultToNotReadyMs", label: "fault → node NotReady (Ready=Unknown)" },
  { key: "faultToTaintMs", label: "fault → unreachable:NoExecute taint" },
  { key: "faultToEvictionMs", label: "fault → pods evicted" },
];

/** One step of the load test. */
export interface LoadRun {
  targets: number;
  durationS: number;
  /** Heartbeats the publisher sent per second, and the supervisor received per second. */
  sentPerS: number;
  ingestPerS: number;
  /** Every stats line's messagesPerS over the steady window. */
  ingestSeries: number[];
  /** Expiries (and relapses) not explained by a deliberate pause. */
  deadlinesMissed: number;
  missedTargets: string[];
  /** Deliberate pauses (a target going silent for longer than its timeout) and their expiries. */
  pauses: number;
  pausesDetected: number;
  /** latenessMs of the expiries caused by pauses. */
  lateness: Summary | undefined;
  latenessSamples: number[];
  /** silenceMs of those expiries (timeout + lateness). */
  silence: Summary | undefined;
  /** Supervisor CPU over the steady window, % of one core; RSS samples, MB. */
  cpuPercent: number;
  rssMaxMb: number;
  rssEndMb: number;
  /** Broker and load publisher CPU over the same window, % of one core. */
  brokerCpuPercent?: number;
  publisherCpuPercent?: number;
  /** Publisher send lateness behind its schedule (p99, max), ms. */
  publisherLagP99Ms?: number;
  publisherLagMaxMs?: number;
  /** Process spawn → `armed` line (bench clock) and `armed` on the process's own clock. */
  spawnToArmedMs: number;
  processArmedMs: number;
  /** Largest watchdog timer lateness the supervisor reported. */
  maxTimerLatenessMs?: number;
  lagEvents?: number;
  /** True when the publisher could not keep its schedule (the step says nothing then). */
  publisherBound: boolean;
}

/** The whole load section. */
export interface LoadResult {
  headline?: LoadRun;
  search: LoadRun[];
  /** Largest target count with no deadline missed, and the smallest with a miss. */
  maxTargetsNoMiss?: number;
  minTargetsWithMiss?: number;
  searchNote: string;
  /** The runtime with a handful of targets: its RSS, start-up and idle-lateness floor. */
  floor?: LoadRun;
  /** `deno eval` spawn → its first output line, ms (Deno's own start-up floor). */
  denoStartupMs?: number;
  /** RSS of an idle `deno eval`, bare and after importing npm:mqtt, MB. */
  rssFloorMb?: { deno?: number; denoWithMqtt?: number };
}

/** Measured Lease renewal cadence of one control plane. */
export interface LeaseCadence {
  settings: ControlPlaneSettings;
  /** Renewal intervals of live nodes, s. */
  intervals: Summary | undefined;
  samples: number;
}

/** One goal of the issue with its measurement. */
export interface GoalResult {
  goal: string;
  target: string;
  measured: string;
  met: boolean | undefined;
  bound?: string;
}

/** The JSON file. */
export interface BenchResults {
  schema: 1;
  startedAt: string;
  finishedAt: string;
  durationS: number;
  options: Record<string, unknown>;
  machine: MachineInfo;
  controlPlanes: Record<string, LeaseCadence>;
  samples: Sample[];
  load?: LoadResult;
  /** API server write latency on this machine (default control plane). */
  apiProbe?: ApiProbe;
  /**
   * Per phase: machine-wide CPU use (% of all cores), the part of it used by processes outside the
   * benchmark (other work on the machine), and the load average at its end.
   */
  phases: {
    name: string;
    durationS: number;
    cpuBusyPercent: number;
    foreignCpuPercent: number;
    loadAvg1m: number;
  }[];
  goals: GoalResult[];
  notes: string[];
}
