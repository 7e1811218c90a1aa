# Shell functions the bench scripts share; sourced, not run.

# busy_check: warn when something else keeps the CPUs busy before we start
# (a build, tests): the numbers would say more about that than about us.
busy_check() {
	local a b
	a=$(awk '/^cpu / { print $2+$3+$4+$5+$6+$7+$8+$9, $5+$6 }' /proc/stat)
	sleep 1
	b=$(awk '/^cpu / { print $2+$3+$4+$5+$6+$7+$8+$9, $5+$6 }' /proc/stat)
	awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " "); t = y[1] - x[1]
		busy = t ? 100 * (1 - (y[2] - x[2]) / t) : 0
		if (busy > 10) printf "WARNING: the CPUs were %.0f%% busy before the benchmark started; expect noisy numbers\n", busy }'
}

# steal_start / steal_pct: the share of CPU time the hypervisor gave to
# others since steal_start (steal in /proc/stat); on a shared virtual
# machine it explains much of the run-to-run spread.
steal_start() { steal0=$(awk '/^cpu / { print $2+$3+$4+$5+$6+$7+$8+$9, $9 }' /proc/stat); }
steal_pct() {
	awk -v s0="$steal0" '/^cpu / { split(s0, a, " "); t = $2+$3+$4+$5+$6+$7+$8+$9 - a[1]
		printf "%.1f%%", t ? 100 * ($9 - a[2]) / t : 0 }' /proc/stat
}
steal_report() { echo "   CPU steal during the run: $(steal_pct)"; }

# cpu_seconds PID: the user and system CPU seconds process PID has used.
cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat"; }
