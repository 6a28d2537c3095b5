import { setFlagsFromString } from 'node:v8';

const V8_FLAG = '--heap-growing-percent';

/**
 * The V8 option a service runs with for TASKSTREAM_HEAP_GROWTH_PERCENT, or undefined when V8 is left
 * to choose: the setting is 0, or the process was started with the option on its command line
 * (an operator's `node --heap-growing-percent=…` wins over the setting).
 *
 * Left to itself, V8 lets the old generation grow up to fourfold past what the last full collection
 * kept, and returns pages lazily: services whose live heap is 20-60 MB at 10,000 tasks in flight
 * reach 130-200 MB of RSS, most of it garbage not yet collected. The setting exists because Node
 * refuses this option in NODE_OPTIONS, and a container's command is not the operator's to edit.
 */
export function heapGrowthOption(percent: number, execArgv: readonly string[] = process.execArgv): string | undefined {
  if (percent === 0) return undefined;
  if (execArgv.some((arg) => arg === V8_FLAG || arg.startsWith(`${V8_FLAG}=`) || arg.startsWith('--heap_growing_percent'))) return undefined;
  return `${V8_FLAG}=${percent}`;
}

/** Applies heapGrowthOption to this process; V8 reads it each time it sets the next collection's limit. */
export function applyHeapGrowth(percent: number): void {
  const option = heapGrowthOption(percent);
  if (option !== undefined) setFlagsFromString(option);
}
