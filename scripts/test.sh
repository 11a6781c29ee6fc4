#!/usr/bin/env bash
# Run the airgap.hangar test suites: scripts/test.sh [sanity|unit|integration|docs|all]...
#
#   sanity       ansible-test sanity, every test, on the controller Python; compile and import
#                again on each other Python 3.9+ found here (module code must run on 3.9).
#   unit         pytest over tests/unit, tests/support_tests, tests/registry and
#                tests/reliability (faults and bad input against real registries).
#   integration  ansible-test integration, each target in tests/integration/targets.
#   docs         regenerate docs/modules/ from the modules' documentation into a temporary
#                directory and compare it with docs/modules/, one test per page.
#
# Each run first calls scripts/setup.sh and scripts/layout.sh, then tests the copy in
# build/ansible_collections/airgap/hangar. The last line printed is "N passed, N failed",
# counting sanity tests, pytest tests, integration targets and doc pages; the exit status is
# non-zero when anything failed or nothing ran at all.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RESULTS="$HANGAR_BUILD/test-results"
PYTHON_BIN="$HANGAR_BUILD/python-bin"
MIN_TARGET_PYTHON="3.9"

# Per step: "step passed failed skipped seconds", filled by record().
SUMMARY=()
TOTAL_PASSED=0
TOTAL_FAILED=0


usage() {
    echo "usage: scripts/test.sh [sanity|unit|integration|docs|all]..." >&2
    exit 2
}


record() {
    local step="$1" passed="$2" failed="$3" skipped="$4" started="$5"

    SUMMARY+=("$step $passed $failed $skipped $((SECONDS - started))")
    TOTAL_PASSED=$((TOTAL_PASSED + passed))
    TOTAL_FAILED=$((TOTAL_FAILED + failed))
}


# Print "passed failed skipped" summed over JUnit XML files, given as files or directories.
count_junit() {
    python - "$@" <<'EOF'
import pathlib
import sys
import xml.etree.ElementTree as ET

passed = failed = skipped = 0
for arg in map(pathlib.Path, sys.argv[1:]):
    if not arg.exists():
        continue
    for path in sorted(arg.glob("*.xml")) if arg.is_dir() else [arg]:
        for case in ET.parse(path).getroot().iter("testcase"):
            outcomes = {child.tag for child in case}
            if outcomes & {"failure", "error"}:
                failed += 1
            elif "skipped" in outcomes:
                skipped += 1
            else:
                passed += 1
print(passed, failed, skipped)
EOF
}


# ansible-test walks up from the working directory to find version control, which would find
# this repository's .git, in which build/ is ignored, and so see no files at all. Naming the
# content root stops the walk; ansible-test then takes every file of the copy.
# PYTHON_BIN comes first on PATH because ansible-test finds interpreters there by name.
ansible_test() {
    (cd "$HANGAR_LAYOUT" && PATH="$PYTHON_BIN:$PATH" ANSIBLE_TEST_CONTENT_ROOT="$HANGAR_LAYOUT" \
        ansible-test "$@" --color no)
}


# Link each Python that module code supports, other than the controller's, into PYTHON_BIN as
# pythonX.Y, found on PATH or in pyenv. A pyenv shim fails for a version that is not selected,
# and ansible-test would take it for a broken interpreter, so each candidate is tried first.
link_target_pythons() {
    local version candidate

    rm -rf "$PYTHON_BIN"
    mkdir -p "$PYTHON_BIN"

    for version in $(supported_target_versions); do
        for candidate in "$(command -v "python$version" || true)" \
            "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$version".*/bin/"python$version"; do
            if [ -x "$candidate" ] && "$candidate" -c 'import ensurepip' >/dev/null 2>&1; then
                ln -s "$candidate" "$PYTHON_BIN/python$version"
                break
            fi
        done
    done
}


controller_version() {
    python -c 'import sys; print("%d.%d" % sys.version_info[:2])'
}


supported_target_versions() {
    python - "$MIN_TARGET_PYTHON" <<'EOF'
import sys

from ansible_test._internal.constants import SUPPORTED_PYTHON_VERSIONS

minimum = tuple(int(part) for part in sys.argv[1].split("."))
controller = "%d.%d" % sys.version_info[:2]
for version in SUPPORTED_PYTHON_VERSIONS:
    if tuple(int(part) for part in version.split(".")) >= minimum and version != controller:
        print(version)
EOF
}


# Run one ansible-test sanity command; print "passed failed skipped" from its JUnit files.
sanity_counts() {
    local junit_dir="$HANGAR_LAYOUT/tests/output/junit" status=0 counts passed failed skipped

    rm -rf "$junit_dir"
    ansible_test sanity --local --junit "$@" >&2 || status=$?
    counts="$(count_junit "$junit_dir")" || counts="0 1 0"
    read -r passed failed skipped <<< "$counts"

    # ansible-test stops on an error of its own (a broken interpreter, a failed pip install)
    # without writing a JUnit file for it.
    if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
        failed=1
    fi

    echo "$passed $failed $skipped"
}


run_sanity() {
    local started=$SECONDS passed=0 failed=0 skipped=0 p f s version

    link_target_pythons

    log "sanity: all tests on Python $(controller_version)"
    read -r p f s <<< "$(sanity_counts --python "$(controller_version)")"
    passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))

    for version in $(supported_target_versions); do
        if [ ! -e "$PYTHON_BIN/python$version" ]; then
            log "sanity: no Python $version here; compile and import not run on it"
            continue
        fi
        log "sanity: compile and import on $(readlink "$PYTHON_BIN/python$version")"
        read -r p f s <<< "$(sanity_counts --test compile --test import --python "$version")"
        passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
    done

    record sanity "$passed" "$failed" "$skipped" "$started"
}


run_unit() {
    local started=$SECONDS paths=() dir status=0 counts="0 0 0" passed failed skipped

    for dir in tests/unit tests/support_tests tests/registry tests/reliability; do
        [ -d "$HANGAR_LAYOUT/$dir" ] && paths+=("$dir")
    done

    if [ "${#paths[@]}" -eq 0 ]; then
        log "unit: no test directories"
        record unit 0 0 0 "$started"
        return
    fi

    log "unit: pytest ${paths[*]}"
    mkdir -p "$RESULTS"
    rm -f "$RESULTS/pytest.xml"

    # pytest exits 5 when it collects nothing; that is not a failure of this step, but the run
    # as a whole fails when no step ran any test.
    (cd "$HANGAR_LAYOUT" && PYTHONPATH="$HANGAR_BUILD${PYTHONPATH:+:$PYTHONPATH}" \
        python -m pytest -p no:cacheprovider --junitxml="$RESULTS/pytest.xml" "${paths[@]}") \
        || status=$?

    if [ -f "$RESULTS/pytest.xml" ]; then
        counts="$(count_junit "$RESULTS/pytest.xml")" || counts="0 1 0"
    fi
    read -r passed failed skipped <<< "$counts"

    # A crash that pytest reports as no failed test (an error in a conftest, an interrupted
    # run, no report at all) still fails the step.
    if [ "$status" -ne 0 ] && [ "$status" -ne 5 ] && [ "$failed" -eq 0 ]; then
        log "unit: pytest exited $status"
        failed=1
    fi

    record unit "$passed" "$failed" "$skipped" "$started"
}


run_integration() {
    local started=$SECONDS listing targets=() target passed=0 failed=0

    if ! listing="$(ansible_test integration --local --list-targets 2>/dev/null)"; then
        log "integration: ansible-test could not list the targets"
        record integration 0 1 0 "$started"
        return
    fi
    mapfile -t targets <<< "$listing"

    # One ansible-test run per target, so that a failed target does not hide the others.
    for target in "${targets[@]}"; do
        [ -n "$target" ] || continue
        log "integration: $target"
        if ansible_test integration --local "$target"; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1))
            log "integration: $target FAILED"
        fi
    done

    record integration "$passed" "$failed" 0 "$started"
}


# A page that differs, is missing or is left over fails; the diff shows what is stale.
compare_docs() {
    local generated="$1" committed="$2" page name passed=0 failed=0

    for page in "$generated"/*.md; do
        name="$(basename "$page")"
        if diff -u "$committed/$name" "$page" >&2; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1))
        fi
    done

    for page in "$committed"/*.md; do
        [ -e "$page" ] || continue
        name="$(basename "$page")"
        if [ ! -e "$generated/$name" ]; then
            log "docs: docs/modules/$name documents no module" >&2
            failed=$((failed + 1))
        fi
    done

    echo "$passed $failed"
}


run_docs() {
    local started=$SECONDS scratch passed=0 failed=0

    scratch="$(mktemp -d)"
    log "docs: regenerating docs/modules into $scratch"
    if (cd "$HANGAR_LAYOUT" && python scripts/gen_module_docs.py --output "$scratch") >&2; then
        read -r passed failed <<< "$(compare_docs "$scratch" "$HANGAR_LAYOUT/docs/modules")"
    else
        log "docs: scripts/gen_module_docs.py failed"
        failed=1
    fi
    rm -rf "$scratch"

    if [ "$failed" -ne 0 ]; then
        log "docs: docs/modules/ is out of date with the modules' documentation; regenerate it" \
            "with '. .venv/bin/activate && python scripts/gen_module_docs.py' and commit it"
    fi
    record docs "$passed" "$failed" 0 "$started"
}


print_summary() {
    local line step passed failed skipped seconds

    echo
    log "summary"
    for line in "${SUMMARY[@]}"; do
        read -r step passed failed skipped seconds <<< "$line"
        printf '  %-12s %5d passed %5d failed %5d skipped %6ds\n' \
            "$step" "$passed" "$failed" "$skipped" "$seconds"
    done

    if [ $((TOTAL_PASSED + TOTAL_FAILED)) -eq 0 ]; then
        echo "no tests ran"
        TOTAL_FAILED=1
    fi

    echo "$TOTAL_PASSED passed, $TOTAL_FAILED failed"
}


main() {
    local steps=("$@") step started

    [ "${#steps[@]}" -gt 0 ] || steps=(all)
    for step in "${steps[@]}"; do
        case "$step" in
            sanity | unit | integration | docs) ;;
            all) steps=(sanity unit integration docs); break ;;
            *) usage ;;
        esac
    done

    started=$SECONDS
    if ! bash "$HANGAR_REPO/scripts/setup.sh" || ! bash "$HANGAR_REPO/scripts/layout.sh"; then
        record setup 0 1 0 "$started"
        print_summary
        exit 1
    fi
    record setup 0 0 0 "$started"

    activate_venv
    for step in "${steps[@]}"; do
        "run_$step"
    done

    print_summary
    [ "$TOTAL_FAILED" -eq 0 ]
}


main "$@"
