package nflog

import "portknock/input"

var _ input.Input = (*Input)(nil)

// The names of an Input's own counters in its Stats.
const (
	// KernelDrops counts log messages the kernel could not deliver, known
	// from gaps in their sequence numbers.
	KernelDrops = "kernel_drops"
	// Overruns counts times a socket's receive buffer overflowed
	// (ENOBUFS).
	Overruns = "overruns"
	// BatchSwitches counts the times a socket started or stopped batching.
	BatchSwitches = "batch_switches"
)

// counters lists an Input's own counters, in the same order everywhere.
func counters(kernelDrops, overruns, batchSwitches uint64) []input.Counter {
	return []input.Counter{
		{Name: KernelDrops, Value: kernelDrops},
		{Name: Overruns, Value: overruns},
		{Name: BatchSwitches, Value: batchSwitches},
	}
}
