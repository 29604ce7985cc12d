package sysfs

import (
	"slices"
	"strconv"
	"strings"
)

// NUMANodeIDs lists the node's NUMA nodes ("node0", "node1", ... under devices/system/node).
// A machine that shows none has no NUMA information.
func (p Paths) NUMANodeIDs() ([]int, error) {
	names, err := listDir(p.NUMANodes())
	if err != nil {
		return nil, err
	}
	var ids []int
	for _, name := range names {
		if rest, ok := strings.CutPrefix(name, "node"); ok {
			if id, err := strconv.Atoi(rest); err == nil {
				ids = append(ids, id)
			}
		}
	}
	slices.Sort(ids)
	return ids, nil
}
