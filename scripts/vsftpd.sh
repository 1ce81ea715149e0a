#!/usr/bin/env bash
# vsftpd.sh — install vsftpd and run one on loopback for the reconciliation upload (the
# platform's FTP server in demos and manual runs; the Go tests start their own vsftpd).
#
#   scripts/vsftpd.sh install               install Debian's vsftpd if missing (idempotent)
#   scripts/vsftpd.sh start PORT DIR [tls]  serve DIR anonymously on 127.0.0.1:PORT, print PID
#   scripts/vsftpd.sh stop PID              stop a vsftpd this script started
#
# Layout: DIR is vsftpd's anon_root and uploads go to DIR/incoming. vsftpd chroots the
# anonymous user into anon_root and refuses a root the ftp user can write to ("500 OOPS:
# refusing to run with writable root inside chroot()"), so DIR is made root-owned 0755 and
# only DIR/incoming is owned by the ftp user. Upload with Config{Dir: "incoming"}.
#
# Needs root: anonymous FTP chroots. vsftpd runs in the foreground (background=NO) under
# setsid, so it outlives this script; its config, log and (for tls) self-signed certificate
# are in a temp dir printed on stderr. A misspelled config key makes vsftpd exit silently with
# status 2: this script notices (the port never answers) and prints the log.
#
# Environment: VSFTPD_PASV_MIN (default 40000 + PORT % 20000), range of 20 passive ports.
set -euo pipefail

say() { echo "vsftpd.sh: $*" >&2; }

install() {
	if command -v vsftpd >/dev/null 2>&1 || [ -x /usr/sbin/vsftpd ]; then
		return 0
	fi
	say "installing vsftpd"
	sudo_cmd=""
	[ "$(id -u)" -eq 0 ] || sudo_cmd=sudo
	$sudo_cmd apt-get update -q
	DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q vsftpd openssl
}

# answers: true when something on 127.0.0.1:$1 sends an FTP 220 greeting.
answers() {
	# In a subshell: a bare `exec` redirection would otherwise rebind this script's stderr.
	(
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		line=$(timeout 2 head -n1 <&3 || true)
		case "$line" in 220*) exit 0 ;; *) exit 1 ;; esac
	) 2>/dev/null
}

start() {
	local port=$1 dir=$2 mode=${3:-plain}
	case "$mode" in plain | tls) ;; *) say "mode must be plain or tls, not $mode"; exit 2 ;; esac
	install
	[ "$(id -u)" -eq 0 ] || { say "must run as root (anonymous FTP chroots)"; exit 1; }
	if answers "$port"; then
		say "something already answers on 127.0.0.1:$port"
		exit 1
	fi
	local bin
	bin=$(command -v vsftpd || echo /usr/sbin/vsftpd)
	id ftp >/dev/null 2>&1 || { say "no ftp user (Debian's vsftpd package creates it)"; exit 1; }
	mkdir -p "$dir/incoming" /var/run/vsftpd/empty
	chown root:root "$dir"
	chmod 0755 "$dir"
	chown ftp:ftp "$dir/incoming"
	chmod 0755 "$dir/incoming"
	dir=$(cd "$dir" && pwd)

	local work pasv
	work=$(mktemp -d "${TMPDIR:-/tmp}/quancun-vsftpd.XXXXXX")
	pasv=${VSFTPD_PASV_MIN:-$((40000 + port % 20000))}
	cat >"$work/vsftpd.conf" <<CONF
listen=YES
listen_ipv6=NO
background=NO
listen_address=127.0.0.1
listen_port=$port
anonymous_enable=YES
local_enable=NO
no_anon_password=YES
write_enable=YES
anon_upload_enable=YES
anon_other_write_enable=YES
anon_mkdir_write_enable=NO
anon_umask=022
anon_root=$dir
pasv_enable=YES
pasv_address=127.0.0.1
pasv_min_port=$pasv
pasv_max_port=$((pasv + 20))
connect_from_port_20=NO
secure_chroot_dir=/var/run/vsftpd/empty
seccomp_sandbox=NO
dirmessage_enable=NO
xferlog_enable=YES
log_ftp_protocol=YES
vsftpd_log_file=$work/vsftpd.log
CONF
	if [ "$mode" = tls ]; then
		openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=127.0.0.1" \
			-addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
			-keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
		cat >>"$work/vsftpd.conf" <<CONF
ssl_enable=YES
allow_anon_ssl=YES
force_anon_logins_ssl=YES
force_anon_data_ssl=YES
rsa_cert_file=$work/cert.pem
rsa_private_key_file=$work/key.pem
ssl_tlsv1=YES
ssl_sslv2=NO
ssl_sslv3=NO
ssl_ciphers=HIGH
CONF
		say "CA certificate for clients: $work/cert.pem"
	fi
	setsid "$bin" "$work/vsftpd.conf" >>"$work/vsftpd.out" 2>&1 </dev/null &
	local pid=$!
	local i=0
	while [ $i -lt 100 ]; do
		if answers "$port"; then
			say "vsftpd up on 127.0.0.1:$port serving $dir (uploads into incoming/); files in $work"
			echo "$pid"
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid" || say "vsftpd exited with status $? (2 = bad config key); config $work/vsftpd.conf"
			cat "$work/vsftpd.out" >&2 || true
			exit 1
		fi
		i=$((i + 1))
		sleep 0.1
	done
	say "vsftpd did not answer on port $port within 10 s; see $work"
	kill "$pid" 2>/dev/null || true
	exit 1
}

stop() {
	local pid=$1
	# Only a vsftpd: never kill an unrelated process that reused the PID.
	if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = vsftpd ]; then
		kill "$pid"
	else
		say "PID $pid is not a vsftpd"
		exit 1
	fi
}

case "${1:-}" in
install) install ;;
start) [ $# -ge 3 ] || { say "usage: $0 start PORT DIR [tls]"; exit 2; }; start "$2" "$3" "${4:-plain}" ;;
stop) [ $# -eq 2 ] || { say "usage: $0 stop PID"; exit 2; }; stop "$2" ;;
*) say "usage: $0 install | start PORT DIR [tls] | stop PID"; exit 2 ;;
esac
