package config

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	"portknock/sequence"
)

// sweep is an ordered port scan: one probe per port of the knock space, in
// rising or falling order, of one protocol or of both (a scanner probing
// each port with TCP and UDP before the next).
type sweep struct {
	name    string
	protos  []sequence.Proto
	falling bool
}

var sweeps = []sweep{
	{"rising TCP", []sequence.Proto{sequence.TCP}, false},
	{"falling TCP", []sequence.Proto{sequence.TCP}, true},
	{"rising UDP", []sequence.Proto{sequence.UDP}, false},
	{"falling UDP", []sequence.Proto{sequence.UDP}, true},
	{"rising TCP+UDP", []sequence.Proto{sequence.TCP, sequence.UDP}, false},
	{"falling TCP+UDP", []sequence.Proto{sequence.TCP, sequence.UDP}, true},
}

// sweptDoors returns, for each door with a fixed sequence that some ordered
// port sweep opens, the first such sweep's name. Ports outside the knock
// space are never state, so a sweep over all 65535 ports is, to the
// matcher, exactly its probes of the knock space; the real matcher judges
// them, so other doors' ports breaking the run count as they would. The
// probes are SYNs (they pass a door's tcpflags when a real scan would) to
// the door's target, one source, all within seq_timeout: a scan at a few
// thousand packets a second covers the gap between usual knock ports in
// well under the default timeout.
func sweptDoors(doors []Door) map[string]string {
	var mdoors []sequence.Door
	for i := range doors {
		if len(doors[i].Sequence) > 0 {
			md, _ := doors[i].Split()
			mdoors = append(mdoors, md)
		}
	}
	if len(mdoors) == 0 {
		return nil
	}
	var space []sequence.Step
	for _, d := range mdoors {
		space = append(space, d.Sequence...)
	}
	out := make(map[string]string)
	for _, sw := range sweeps {
		probes := slices.DeleteFunc(slices.Clone(space), func(s sequence.Step) bool { return !slices.Contains(sw.protos, s.Proto) })
		slices.SortFunc(probes, func(a, b sequence.Step) int {
			c := cmp.Compare(a.Port, b.Port)
			if sw.falling {
				c = -c
			}
			return cmp.Or(c, cmp.Compare(a.Proto, b.Proto))
		})
		probes = slices.Compact(probes)
		// Doors with a target see only probes sent to it; a scan of that
		// address sends them all there, so judge each door on its own
		// when it has one.
		for _, d := range mdoors {
			if _, done := out[d.Name]; done {
				continue
			}
			if opens(mdoors, d, probes) {
				out[d.Name] = sw.name
			}
		}
	}
	return out
}

// opens reports whether probes, sent in order from one source to door's
// target (if any), complete door while every door of all is matched.
func opens(all []sequence.Door, door sequence.Door, probes []sequence.Step) bool {
	m, err := sequence.New(all, sequence.Options{MaxSources: 1})
	if err != nil {
		return false // already reported by validation
	}
	src := netip.MustParseAddr("192.0.2.1")
	var out []sequence.Match
	for _, p := range probes {
		ev := sequence.Event{Src: src, Dst: door.Target, Port: p.Port, Proto: p.Proto}
		if p.Proto == sequence.TCP {
			ev.Flags, ev.FlagsKnown = sequence.SYN, true
		}
		out = m.Handle(&ev, out)
	}
	return slices.ContainsFunc(out, func(m sequence.Match) bool { return m.Door == door.Name })
}

// warnSweeps warns about every door an ordered port sweep opens: with a
// plain sequence, ports in rising or falling order are no secret at all.
func warnSweeps(doors []Door, pr *problems) {
	swept := sweptDoors(doors)
	for i := range doors {
		d := &doors[i]
		name, ok := swept[d.Name]
		if !ok {
			continue
		}
		steps := make([]string, len(d.Sequence))
		for j, s := range d.Sequence {
			steps[j] = s.String()
		}
		pr.warnf(d.Line, "sequence", "door %q (%s) is opened by a %s port sweep from any address; put its ports out of order, or use a sealed door",
			d.Name, strings.Join(steps, " "), name)
	}
}

// warnUnfiltered warns about text inputs that keep every line of their
// formats: without a prefix, a packet any other rule logs (or a line anyone
// who may log as the firewall's program writes) is a knock. A pinned simple
// input is exempt: Kroon's protocol has a producer of its own that writes
// only the knock rule's packets.
func warnUnfiltered(inputs []Input, pr *problems) {
	for i := range inputs {
		in := &inputs[i]
		if in.Type == InputNFLOG || in.Prefix != "" || in.Format == "simple" {
			continue
		}
		pr.warnf(in.Line, "prefix", "input %s has no prefix: a packet any rule logs there is a knock; give the knock rule a log prefix and set prefix to it", in.String())
	}
}

// InputWarnings returns the warnings about inputs given outside the file,
// on the command line (-i), in the words the file's own would have.
func InputWarnings(inputs []Input) []string {
	pr := &problems{path: "-i"}
	warnUnfiltered(inputs, pr)
	return pr.warningStrings()
}
