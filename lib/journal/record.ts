/**
 * One line of the failover journal: one incident, as JSON (schema version
 * {@linkcode JOURNAL_SCHEMA_VERSION}). Written by the supervisor (`recorder.ts`, `journal_file.ts`),
 * read by `sdv-failover report`. The zod schema is the single source of the type; a reader drops
 * (and counts) lines that do not match it.
 *
 * An incident runs from the last heartbeat of the failed target to the cluster's convergence as
 * the supervisor observes it (or a `timeout`/`abandoned` marker). Every step carries `tMs`, the
 * monotonic offset in ms from that last heartbeat (from the first notice of the expiry when the
 * target was never heard from); only `startedAt` is wall time.
 *
 * @module
 */
import { z } from "zod";
import { AsilSchema } from "../config/schema.ts";

/** The schema version written into every line (`v`). */
export const JOURNAL_SCHEMA_VERSION = 1;

/**
 * What a step is, for the report's colours: `detect` (heartbeat, expiry, barrier), `decide`
 * (blocked, fence pending), `mqtt` (promotion published / acknowledged), `kube` (an API write),
 * `event` (a core/v1 Event), `end` (ready, converged, timeout, abandoned).
 */
export const StepKindSchema = z.enum(["detect", "decide", "mqtt", "kube", "event", "end"]);
/** A step kind. */
export type StepKind = z.infer<typeof StepKindSchema>;

/** One step of an incident. */
export const StepSchema = z.object({
  /** Human-readable, e.g. `promotion published: lane-detection epoch 1 → worker-node3`. */
  step: z.string(),
  kind: StepKindSchema,
  /** When the step completed, ms since the last heartbeat (monotonic). */
  tMs: z.number(),
  /** When the step started (API writes: the start of the reconcile pass), ms; absent: instant. */
  fromMs: z.number().optional(),
  /** The workload it concerns, if one. */
  workload: z.string().optional(),
  /** Outcome or detail (an API write's `done`/`failed: …`, why a failover was blocked). */
  detail: z.string().optional(),
});
/** A step of an incident. */
export type Step = z.infer<typeof StepSchema>;

/** A workload an incident concerned: failed over (`epoch` ≥ 1) or blocked. */
export const IncidentWorkloadSchema = z.object({
  name: z.string(),
  namespace: z.string(),
  asil: AsilSchema,
  fttiMs: z.number(),
  /** `failover` (promotion published) or `blocked` (the other side was not trusted). */
  outcome: z.enum(["failover", "blocked"]),
  /** The failover reason (`node-offline`, `sensor-expired:<sensor>`, …). */
  reason: z.string(),
  /** Failover only: the new fencing epoch, the active node, the promotion's issuer. */
  epoch: z.number().optional(),
  activeNode: z.string().optional(),
  failedNode: z.string().optional(),
  issuer: z.string().optional(),
  /** Last heartbeat → promotion published, ms (failover only). */
  promotionMs: z.number().optional(),
  /** `promotionMs` ≤ `fttiMs` (false when blocked). */
  fttiMet: z.boolean(),
  /** Blocked only: why. */
  why: z.string().optional(),
});
/** A workload of an incident. */
export type IncidentWorkload = z.infer<typeof IncidentWorkloadSchema>;

/** How an incident ended. */
export const IncidentOutcomeSchema = z.enum(["converged", "blocked", "timeout", "abandoned"]);
/** How an incident ended. */
export type IncidentOutcome = z.infer<typeof IncidentOutcomeSchema>;

/** One journal line. */
export const IncidentRecordSchema = z.object({
  v: z.literal(JOURNAL_SCHEMA_VERSION),
  /** `<startedAt, compact>-<target>`, e.g. `20260314T101502.123Z-node-worker-node2`. */
  id: z.string().min(1),
  /** Wall time (ISO 8601) of the last heartbeat: the start of the incident. */
  startedAt: z.string(),
  /** The supervisor that recorded it; `term`: its leader term in a pair (null when alone). */
  supervisor: z.object({ id: z.string(), term: z.number().nullable() }),
  /** The failed target whose expiry caused the incident. */
  trigger: z.object({
    /** `node/<name>`, `sensor/<name>`, `app/<workload>@<node>`. */
    target: z.string(),
    kind: z.enum(["node", "sensor", "app"]),
    /** `deadline`, `offline` (Last Will) or `never-seen`. */
    cause: z.string(),
    timeoutMs: z.number(),
    /** False when the target was never heard from (offsets then start at the first notice). */
    heardFrom: z.boolean(),
  }),
  /** The node of the failed target. */
  node: z.string(),
  workloads: z.array(IncidentWorkloadSchema),
  /** The highest ASIL of its workloads (null: no workload concerned, e.g. a fence only). */
  asil: AsilSchema.nullable(),
  /** The smallest FTTI of its workloads, ms (null: none). */
  fttiMs: z.number().nullable(),
  /** Every workload's promotion within its FTTI (null: none). */
  fttiMet: z.boolean().nullable(),
  /**
   * The budget of the trigger (`lib/config/budget.ts`): detection ≤ its timeout +
   * `supervisor.lagToleranceMs`, reaction (expiry → promotion) ≤ `supervisor.reactionBudgetMs`.
   */
  budget: z.object({ detectionMs: z.number(), reactionMs: z.number() }),
  outcome: IncidentOutcomeSchema,
  /** In time order; the first is the last heartbeat (tMs 0) when there was one. */
  steps: z.array(StepSchema),
  /** Steps left out to keep the line bounded (see `MAX_STEPS` in `recorder.ts`). */
  stepsDropped: z.number().int().min(0).default(0),
  /** `tMs` of the last step, ms. */
  endToEndMs: z.number(),
});
/** One incident as written to the journal. */
export type IncidentRecord = z.infer<typeof IncidentRecordSchema>;
