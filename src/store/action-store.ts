import { Code, ConnectError } from "@connectrpc/connect";
import type { Condition } from "../condition.js";
import type { Execution, ExecutionTarget } from "../execution.js";
import { loneSurrogate, type Target, type TargetInput, type TargetPatch } from "../target.js";
import type { PublicKeyInput, TargetPublicKey } from "../target-key.js";

/**
 * defaultInstanceId is the instance of a single-tenant service, "": the
 * instance whose targets and executions the ActionStore's own methods manage,
 * and the one that runs for callers without an instance. Payloads leave an
 * empty instance ID out.
 */
export const defaultInstanceId = "";

/**
 * ActionSnapshot is a consistent view of the targets and executions of one
 * instance (or of some of them, see InstanceStore.load).
 */
export interface ActionSnapshot {
  readonly targets: readonly Target[];
  readonly executions: readonly Execution[];
}

/**
 * StoreChange tells watchers what a write changed, so that plans can be
 * updated without reading everything again.
 */
export interface StoreChange {
  /**
   * The instance whose targets or executions changed; undefined when any
   * instance may have changed (for example after a lost notification
   * connection), so that every instance must be read again.
   */
  readonly instanceId: string | undefined;
  /**
   * IDs of the targets created, changed or deleted; undefined when they are
   * not known (read the whole instance again).
   */
  readonly targetIds?: readonly string[];
  /**
   * IDs of the executions set, changed or removed, cascades included;
   * undefined when they are not known (read the whole instance again).
   */
  readonly executionIds?: readonly string[];
}

/**
 * InstanceStore keeps the targets and executions of one instance (tenant).
 * Names are unique per instance; an instance never sees, changes or refers to
 * the targets and executions of another: an ID of another instance's target
 * is not found.
 */
export interface InstanceStore {
  /** The instance this view manages, "" for defaultInstanceId. */
  readonly instanceId: string;
  /**
   * createTarget stores a new target with a generated ID and signing key.
   * Code.InvalidArgument for a bad field, Code.AlreadyExists for a name taken
   * in this instance.
   */
  createTarget(input: TargetInput): Promise<Target>;
  /**
   * updateTarget changes a target. Code.NotFound for an unknown ID,
   * Code.InvalidArgument for a bad field, Code.AlreadyExists for a taken name.
   */
  updateTarget(id: string, patch: TargetPatch): Promise<Target>;
  /**
   * deleteTarget removes a target, its public keys and every reference to it from executions;
   * an execution left with no entries is removed, and so are the includes of
   * a removed execution (in cascade). Resolves false when there was no such
   * target (which is not an error).
   */
  deleteTarget(id: string): Promise<boolean>;
  /** getTarget returns a target, or undefined. */
  getTarget(id: string): Promise<Target | undefined>;
  /** listTargets returns all targets, oldest first. */
  listTargets(): Promise<readonly Target[]>;
  /**
   * addPublicKey adds a public key to a target, inactive (see parsePublicKey
   * for what is accepted). Code.NotFound for an unknown target,
   * Code.InvalidArgument for a key that is not a usable PEM or an expiration
   * date in the past, Code.ResourceExhausted when the target has
   * maxPublicKeysPerTarget keys already.
   */
  addPublicKey(targetId: string, input: PublicKeyInput): Promise<TargetPublicKey>;
  /**
   * activatePublicKey makes a key the active key of its target, which
   * deactivates the key that was active (at most one key of a target is
   * active). Activating the active key changes nothing and returns it as it
   * is. Code.NotFound for an unknown target or key, Code.FailedPrecondition
   * for an expired key. Watchers hear of the target's change.
   */
  activatePublicKey(targetId: string, keyId: string): Promise<TargetPublicKey>;
  /**
   * deactivatePublicKey stops using a key: the target has no active key
   * until another is activated (its JWE calls fail). Deactivating an inactive
   * (or expired) key changes nothing and returns it as it is. Code.NotFound
   * for an unknown target or key. Watchers hear of the target's change.
   */
  deactivatePublicKey(targetId: string, keyId: string): Promise<TargetPublicKey>;
  /**
   * removePublicKey deletes an inactive key. Resolves false when there was no
   * such target or key (which is not an error); Code.FailedPrecondition for
   * the active key (deactivate it first). An expired key counts as inactive.
   */
  removePublicKey(targetId: string, keyId: string): Promise<boolean>;
  /**
   * listPublicKeys returns the keys of a target, oldest first, `active` as of
   * now; an unknown target has none.
   */
  listPublicKeys(targetId: string): Promise<readonly TargetPublicKey[]>;
  /**
   * setExecution replaces the list of the execution of `condition` and returns
   * it; an empty list removes the execution, and the includes of it from
   * other executions (in cascade, as for deleteTarget), and resolves undefined.
   * Code.InvalidArgument for a malformed condition or list, an include cycle or
   * an include chain deeper than maxIncludeDepth; Code.NotFound for an unknown
   * target or included execution.
   */
  setExecution(condition: Condition, targets: readonly ExecutionTarget[]): Promise<Execution | undefined>;
  /** getExecution returns an execution by its ID (see executionId), or undefined. */
  getExecution(id: string): Promise<Execution | undefined>;
  /** listExecutions returns all executions, ordered by ID. */
  listExecutions(): Promise<readonly Execution[]>;
  /** snapshot returns all targets and executions as of one moment. */
  snapshot(): Promise<ActionSnapshot>;
  /**
   * load returns, as of one moment, those of the given targets and executions
   * that exist (missing ones were deleted): what a plan needs to catch up
   * with a StoreChange that names them.
   */
  load(ids: { readonly targetIds?: readonly string[]; readonly executionIds?: readonly string[] }): Promise<ActionSnapshot>;
}

/**
 * ActionStore keeps the targets and executions of every instance. Its own
 * InstanceStore methods manage the default instance (defaultInstanceId), so a
 * single-tenant service never needs forInstance. Every implementation passes
 * the shared contract suite (describeStoreContract of
 * "connect-actions/testing"): it validates its input, writes all or nothing,
 * keeps instances apart, and tells watchers about every change before the
 * write's promise resolves (for changes made through this object) or soon
 * after (for changes made elsewhere, for example by another replica).
 */
export interface ActionStore extends InstanceStore {
  /**
   * forInstance returns the view of one instance. Throws a ConnectError with
   * Code.InvalidArgument for an ID that is not a valid instance ID (see
   * validateInstanceId).
   */
  forInstance(instanceId: string): InstanceStore;
  /**
   * watch calls `listener` after each change to targets or executions, with
   * what changed, and returns a function that stops the calls.
   */
  watch(listener: (change: StoreChange) => void): () => void;
  /** close releases the store's resources. */
  close(): Promise<void>;
}

/** maxInstanceIdLength is the longest instance ID, 200 characters. */
export const maxInstanceIdLength = 200;

/**
 * validateInstanceId returns `instanceId` if it is a valid instance ID: a
 * string of at most 200 characters without control characters ("" is the
 * default instance). Throws a ConnectError with Code.InvalidArgument otherwise.
 */
export function validateInstanceId(instanceId: string): string {
  if (typeof instanceId !== "string") {
    throw new ConnectError("instance ID must be a string", Code.InvalidArgument);
  }
  if (instanceId.length > maxInstanceIdLength) {
    throw new ConnectError(`instance ID must be at most ${maxInstanceIdLength} characters`, Code.InvalidArgument);
  }
  if (/[\u0000-\u001f\u007f]/.test(instanceId) || loneSurrogate.test(instanceId)) {
    throw new ConnectError("instance ID must not contain control characters or broken Unicode", Code.InvalidArgument);
  }
  return instanceId;
}
