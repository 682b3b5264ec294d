#!/usr/bin/env bash
# Fails when src/ uses a banned function (CONVENTIONS.md "Banned in src/").
set -uo pipefail
cd "$(dirname "$0")/.."
fail=0
check() { # check REGEX WHY [EXCLUDE_FILE]
    local hits
    hits=$(grep -nE "$1" --include='*.c' --include='*.h' -r src | grep -v "^${3:-^$}:" |
        grep -vE '^\S+:[0-9]+:\s*(/\*|\*)')
    if [[ -n $hits ]]; then
        echo "banned ($2):"
        echo "$hits"
        fail=1
    fi
}
check '\b(gets|sprintf|vsprintf|strcpy|strcat|strncpy|strncat|strtok)\s*\(' "unsafe string function"
check '\b(atoi|atol|atof|sscanf)\s*\(' "unchecked number parsing"
check '\bstrto(l|ul|ll|ull)\s*\(' "strtol family outside core/str.c" "src/core/str.c"
check '\b(localtime|gmtime|asctime|ctime)\s*\(' "non-reentrant time function (use the _r form)"
check '\b(signal|system|popen|alloca)\s*\(' "legacy call"
# dup2() onto stdin/stdout/stderr in a child before exec is how stdio is set up (those must
# survive exec); any other dup/dup2 must be dup3(..., O_CLOEXEC) or F_DUPFD_CLOEXEC.
hits=$(grep -nE '\bdup2?\s*\(' -r src --include='*.c' --include='*.h' |
    grep -vE '^\S+:[0-9]+:\s*(/\*|\*)' |
    sed -E 's/\bdup2\s*\([^,()]+,\s*[012]\)//g' | grep -E '\bdup2?\s*\(')
if [[ -n $hits ]]; then
    echo "banned (dup/dup2 without CLOEXEC (use dup3 or F_DUPFD_CLOEXEC)):"
    echo "$hits"
    fail=1
fi
check '\bfopen\s*\([^,]*,\s*"[^"e]*"\s*\)' "fopen without \"e\""
check '\bexit\s*\(' "exit() outside main/cmd_*" "src/infractl/main.c"
while IFS= read -r line; do
    # open() calls must carry O_CLOEXEC
    case $line in *O_CLOEXEC*) ;; *) echo "banned (open without O_CLOEXEC): $line"; fail=1 ;; esac
done < <(grep -nE '\bopen\s*\([^)]' -r src --include='*.c' | grep -v 'pidfd_open\|inotify\|_open(' )
exit $fail
