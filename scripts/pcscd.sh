#!/bin/sh
# pcscd.sh — make sure pcscd with vsmartcard's vpcd driver is installed and running, so the
# PC/SC tests and `quancun sim card` have readers "Virtual PCD 00 00" (TCP 35963) and
# "Virtual PCD 00 01" (TCP 35964). Idempotent: safe to run any number of times.
#
# No systemd on these machines, so pcscd runs as a plain background process in the foreground
# mode (logs go to a file, not to syslog). There is one pcscd per machine: its socket path is
# fixed, so every test on the machine shares it.
#
# Environment: PCSCD_LOG (default ${TMPDIR:-/tmp}/quancun-pcscd.log),
#              PCSCD_APDU=1 to log every APDU (slow, for debugging only).
set -eu

log=${PCSCD_LOG:-${TMPDIR:-/tmp}/quancun-pcscd.log}
socket=/run/pcscd/pcscd.comm
pkgs="pcscd vsmartcard-vpcd libpcsclite-dev pcsc-tools"

say() { echo "pcscd.sh: $*" >&2; }

# 1. Packages: apt-get update only when something is missing (it is slow and needs the mirror).
missing=""
for p in $pkgs; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
if [ -n "$missing" ]; then
	say "installing:$missing"
	sudo_cmd=""
	[ "$(id -u)" -eq 0 ] || sudo_cmd=sudo
	$sudo_cmd apt-get update -q
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q $missing
fi

# answers: true when a PC/SC client can talk to the daemon and sees the vpcd readers.
answers() {
	out=$(timeout 5 pcsc_scan -r 2>/dev/null) || return 1
	echo "$out" | grep -q "Virtual PCD"
}

# 2. The daemon. pgrep -x matches the process name exactly, so this never confuses pcscd with
# this script or an editor holding a file called pcscd.
if pgrep -x pcscd >/dev/null 2>&1; then
	if answers; then
		say "pcscd already running"
		exit 0
	fi
	# Running but not answering yet (e.g. just started by a parallel run): wait below.
else
	# A stale socket from a killed daemon makes clients fail; pcscd removes it on a clean exit.
	if [ -S "$socket" ]; then
		rm -f "$socket"
	fi
	mkdir -p "$(dirname "$log")"
	apdu=""
	[ "${PCSCD_APDU:-0}" = 1 ] && apdu="--apdu"
	say "starting pcscd (log: $log)"
	# setsid: detach from this shell's process group so Ctrl-C in a test run does not kill it.
	setsid pcscd --foreground $apdu >>"$log" 2>&1 </dev/null &
fi

# 3. Wait until it answers (normally ~30 ms, allow 10 s on a loaded machine).
i=0
while [ $i -lt 100 ]; do
	if answers; then
		say "pcscd is up; readers:"
		timeout 5 pcsc_scan -r 2>/dev/null | grep "Virtual PCD" | sed 's/^/  /' >&2 || true
		exit 0
	fi
	i=$((i + 1))
	sleep 0.1
done
say "pcscd did not answer within 10 s; see $log"
exit 1
