#!/usr/bin/env bash
# Stops with a message naming what to install when a prerequisite is missing or too old.
# `--demo` checks what `make demo` needs only (Python and Java); Node and a JDK's javac are for the tests.
set -u
demo_only=0
[ "${1:-}" = "--demo" ] && demo_only=1
fail=0
need() { echo "missing prerequisite: $1 — $2" >&2; fail=1; }

if command -v python3 >/dev/null 2>&1 && python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then :
else need "Python 3.11+" "install python3.11 (or newer) with venv support"; fi

if command -v java >/dev/null 2>&1 || [ -x "${JAVA_HOME:-/nonexistent}/bin/java" ]; then
  java_bin="${JAVA_HOME:+$JAVA_HOME/bin/}java"
  major=$("$java_bin" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
  [ "${major:-0}" -ge 17 ] || need "Java 17+" "found Java ${major:-unknown}; install a JDK 17 or newer (apt-get install openjdk-17-jdk-headless)"
else need "Java 17+" "install a JDK 17 or newer (apt-get install openjdk-17-jdk-headless)"; fi

# The benchmarks' JVM operators (benchmarks/jvm) are compiled for their tests and `make bench`: a JDK, not a JRE.
if [ "$demo_only" -eq 0 ]; then
  for tool in javac jar; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "${JAVA_HOME:-/nonexistent}/bin/$tool" ] \
      || need "$tool (a JDK 17+)" "the tests compile Java: install a JDK, not only a JRE (apt-get install openjdk-17-jdk-headless)"
  done
fi

if [ "$demo_only" -eq 1 ]; then :
elif command -v node >/dev/null 2>&1; then
  node_major=$(node -p 'process.versions.node.split(".")[0]')
  [ "$node_major" -ge 20 ] || need "Node 20+" "found Node $node_major; install Node.js 20 or newer"
  command -v npm >/dev/null 2>&1 || need "npm" "install npm with Node.js 20+"
else need "Node 20+" "install Node.js 20 or newer (with npm)"; fi

exit $fail
