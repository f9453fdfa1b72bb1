import { Code, ConnectError } from "@connectrpc/connect";

/** defaultMaxTargetsPerInstance is the default cap on the targets of one instance, 1000. */
export const defaultMaxTargetsPerInstance = 1000;

/** defaultMaxExecutionsPerInstance is the default cap on the executions of one instance, 1000. */
export const defaultMaxExecutionsPerInstance = 1000;

/**
 * InstanceLimits are a store's caps per instance (tenant), so that no
 * instance can grow without bound at the expense of the others. Both stores
 * take them as options.
 */
export interface InstanceLimits {
  /**
   * Targets one instance may have, a positive integer or Infinity (no cap),
   * default defaultMaxTargetsPerInstance (1000). createTarget beyond it fails
   * with Code.ResourceExhausted.
   */
  readonly maxTargetsPerInstance?: number;
  /**
   * Executions one instance may have, a positive integer or Infinity (no
   * cap), default defaultMaxExecutionsPerInstance (1000). A setExecution that
   * would add one beyond it fails with Code.ResourceExhausted; replacing or
   * removing an execution is always allowed.
   */
  readonly maxExecutionsPerInstance?: number;
}

/**
 * resolveInstanceLimits returns the caps of `limits` with the defaults
 * applied. Throws a ConnectError with Code.InvalidArgument for a cap that is
 * neither a positive integer nor Infinity.
 */
export function resolveInstanceLimits(limits: InstanceLimits): { maxTargets: number; maxExecutions: number } {
  const check = (value: number | undefined, fallback: number, name: string): number => {
    if (value === undefined) return fallback;
    if (value === Infinity || (Number.isSafeInteger(value) && value > 0)) return value;
    throw new ConnectError(`${name} must be a positive integer or Infinity, got ${String(value)}`, Code.InvalidArgument);
  };
  return {
    maxTargets: check(limits.maxTargetsPerInstance, defaultMaxTargetsPerInstance, "maxTargetsPerInstance"),
    maxExecutions: check(limits.maxExecutionsPerInstance, defaultMaxExecutionsPerInstance, "maxExecutionsPerInstance"),
  };
}

/** instanceName names an instance in messages. */
const instanceName = (instanceId: string) => (instanceId === "" ? "the default instance" : `instance "${instanceId}"`);

/**
 * targetCapReached returns the error of a createTarget beyond the cap:
 * Code.ResourceExhausted naming maxTargetsPerInstance.
 */
export function targetCapReached(instanceId: string, max: number): ConnectError {
  return new ConnectError(
    `${instanceName(instanceId)} has ${max} targets, the most maxTargetsPerInstance allows: delete one first`,
    Code.ResourceExhausted,
  );
}

/**
 * executionCapReached returns the error of a setExecution that would add an
 * execution beyond the cap: Code.ResourceExhausted naming
 * maxExecutionsPerInstance.
 */
export function executionCapReached(instanceId: string, max: number): ConnectError {
  return new ConnectError(
    `${instanceName(instanceId)} has ${max} executions, the most maxExecutionsPerInstance allows: remove one first`,
    Code.ResourceExhausted,
  );
}
