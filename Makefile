# miglab: two set-up commands for a new user on a fresh Debian 12 machine, as root:
#   make demo   installs what is needed, builds the guest and runs the homework on the embedded lab
#   make test   installs what is needed and runs lint, type check, unit and integration tests
# Every step is quick when its inputs have not changed (stamp files, the image cache).

SHELL := /bin/bash
.DEFAULT_GOAL := help

# System packages: QEMU (+ the nfs:// block driver), the userspace NFS server, the guest's parts
# (criu is copied into the container-host image; this host's kernel cannot run it), and the
# host-side measurement tools. One list, used by deps and printed by `miglab doctor`.
APT_PACKAGES := qemu-system-x86 qemu-utils qemu-block-extra \
	nfs-ganesha nfs-ganesha-vfs rpcbind libnfs-utils \
	busybox-static iperf3 gcc libc6-dev criu \
	iproute2 iputils-ping nftables tcpdump linux-perf procps fonts-dejavu-core xz-utils \
	openssh-client openssh-server openssl telnet socat

NODE_BIN := node_modules/.bin
MIGLAB := node bin/miglab.js
export NODE_OPTIONS_JEST := --experimental-vm-modules

.PHONY: help deps apt npm build image image-chost qemu-builds demo test lint typecheck unit integration bench bench-batch bench-faults bench-containers bench-containers-batch bench-qemu bench-runs bench-colo clean check-root results-readme

help:
	@echo "make demo   install what is needed, build the guest, run the homework on the embedded lab"
	@echo "make test   install what is needed and run every test (lint, types, unit, integration)"
	@echo "make bench  run the benchmarks; figures go to results/bench/"

check-root:
	@if [ "$$(id -u)" != 0 ]; then echo "miglab: root is needed (network namespaces, bridges, taps, apt-get); run: sudo make $(MAKECMDGOALS)" >&2; exit 1; fi

# Install only the packages that are missing, so a second run costs one dpkg-query.
apt: check-root
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

npm: node_modules/.package-lock.json

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

deps: apt npm

# tsc compiles src/ to dist/; esbuild then joins dist/'s ~420 modules (miglab's, execa's, zod's...)
# into a few files in dist/bundle, which bin/miglab.js loads: every command starts ~0.2 s sooner
# (issue 13, a run's overhead). Lazily loaded parts (figures, hosts, containers, benches) stay
# separate chunks; the drawing thread's code (src/plot/draw-worker.ts) is a second entry, flat
# beside them (drawing-thread.ts finds it next to itself). Packages with native addons stay
# outside, loaded from node_modules as before; require() inside bundled CommonJS code needs the
# banner's createRequire.
BUNDLE_FLAGS := --bundle --splitting --format=esm --platform=node --target=node20 \
	--external:@resvg/resvg-js --external:ssh2 --external:cpu-features --log-level=warning \
	--banner:js="import { createRequire as bundleRequire } from 'node:module'; const require = bundleRequire(import.meta.url);"

build: npm
	@$(NODE_BIN)/tsc -p tsconfig.build.json
	@rm -rf dist/bundle && $(NODE_BIN)/esbuild dist/cli.js dist/plot/draw-worker.js $(BUNDLE_FLAGS) --entry-names=[name] --outdir=dist/bundle

image: deps build
	@$(MIGLAB) image build

# The container-host guest (`miglab containers`): the base image plus CRIU and the container workload.
image-chost: deps build
	@$(MIGLAB) image build --variant chost

# Newer QEMU builds beside the system's, unpacked into vm-images/cache/qemu (miglab qemu list).
# 10.0: Debian's bookworm-backports, for cross-version runs (--qemu 10.0; the integration suite
# migrates 7.2 -> 10.0). 11.1: Debian trixie-backports, run with its own loader and libraries (it
# needs glibc 2.38): COLO (issue 14) needs it, as 10.0.2's COLO is broken (it never enters COLO;
# trixie's 10.0.13 deadlocks after the first checkpoint, docs/colo-trixie.md).
QEMU_SERIES := 10.0 11.1
qemu-builds: deps build
	@for s in $(QEMU_SERIES); do $(MIGLAB) qemu fetch $$s --quiet >/dev/null || exit 1; done

demo: image
	$(MIGLAB) homework

lint: npm
	$(NODE_BIN)/eslint .

typecheck: npm
	$(NODE_BIN)/tsc --noEmit

# results/README.md is generated from the result schemas and CSV columns (src/results/readme.ts);
# a unit test fails when the committed file differs from what this writes.
results-readme: build
	node --input-type=module -e "const m = await import('./dist/results/readme.js'); console.log(await m.writeResultsReadme(process.cwd()))"

unit: npm
	NODE_OPTIONS=$(NODE_OPTIONS_JEST) $(NODE_BIN)/jest --selectProjects unit

integration: image image-chost qemu-builds
	NODE_OPTIONS=$(NODE_OPTIONS_JEST) $(NODE_BIN)/jest --selectProjects integration --runInBand

test: deps lint typecheck unit integration

bench: image
	$(MIGLAB) bench --out results/bench

bench-batch: image
	$(MIGLAB) bench --which batch --out results/bench

bench-faults: image
	$(MIGLAB) bench --which faults --out results/bench

bench-containers: image-chost
	$(MIGLAB) bench --which containers --out results/bench

bench-containers-batch: image-chost
	$(MIGLAB) bench --which containers-batch --out results/bench

# QEMU 7.2 and 10.0 against the link bound, and the switchover policies from 0 to twice the link (9 min here).
bench-qemu: image qemu-builds
	$(MIGLAB) bench --which qemu --out results/bench

# Issue 13: what one `miglab migrate` costs beyond the migration (boot, overhead, warm vs cold).
bench-runs: image
	$(MIGLAB) bench --which runs --out results/bench

# Issue 14: COLO at checkpoint intervals of 100 ms, 1 s and 10 s against the same guest without it,
# and the failover as the client sees it, 5 runs each on QEMU 11.1 (8 min 40 s here, 2026-12-04).
bench-colo: image qemu-builds
	$(MIGLAB) bench --which colo --out results/bench

clean:
	rm -rf dist coverage
