//! The POSIX sh script an init container runs to check a bundle and install from it.

use crate::model::shell::shell_quote;

/// Where a ConfigMap or Secret made by `bundle` is mounted in the examples: `/wheelhouse`, holding
/// `wheelhouse.tgz` and its sidecar.
pub const DEFAULT_BUNDLE: &str = "/wheelhouse/wheelhouse.tgz";

/// Everything after the settings. It runs under dash, busybox sh and bash alike: POSIX sh only,
/// and only the tools a Debian, Alpine or busybox image has (sha256sum, tar, mktemp, sed, tr).
const BODY: &str = r#"
say() {
    printf 'install-script: %s\n' "$*" >&2
}

die() {
    say "$@"
    exit 1
}

need() {
    command -v "$1" >/dev/null 2>&1 || die "$1 is not installed; the script needs it to $2"
}

nl='
'

# A name from the bundle as it is printed: anything but printable ASCII becomes `?`, so that an
# escape sequence cannot rewrite the terminal nor a newline forge a line; at most 200 characters.
shown() {
    printf '%s' "$1" | tr '\n' '?' | LC_ALL=C sed 's/[^ -~]/?/g; s/^\(.\{200\}\).*/\1.../'
}

# A path under wheelhouse/simple/ that is a directory or page of the index `index` writes:
# `index.html`, `index.json`, `P/`, `P/index.html`, `P/index.json`, P a normalized project name.
is_index_entry() {
    case $1 in
    '' | index.html | index.json) return 0 ;;
    esac
    project=${1%%/*}
    page=${1#"$project"}
    case $project in
    '' | -* | *- | *[!a-z0-9-]*) return 1 ;;
    esac
    case $page in
    / | /index.html | /index.json) return 0 ;;
    esac
    return 1
}

# Before anything is extracted: every entry of the archive $1 is `wheelhouse/` or a plain name in
# it, or a page of the wheelhouse's index. An absolute name, a `..` or a directory of its own could write outside the temporary
# directory or hide files from the check of what was extracted.
check_entries() {
    listing=$(tar tzf "$1") || die "cannot list the files in $1"
    outside=
    while IFS= read -r entry; do
        case $entry in
        '' | wheelhouse/) continue ;;
        # Only as a directory (a trailing slash): as a file or a link, what follows could be
        # written through it.
        wheelhouse/simple) ;;
        wheelhouse/simple/*)
            if is_index_entry "${entry#wheelhouse/simple/}"; then
                continue
            fi
            ;;
        wheelhouse/*)
            case ${entry#wheelhouse/} in
            . | .. | */*) ;;
            *) continue ;;
            esac
            ;;
        esac
        printf '%s: outside wheelhouse/\n' "$(shown "$entry")" >&2
        outside=1
    done <<EOF
$listing
EOF
    [ -z "$outside" ] || die "$1 has entries outside wheelhouse/: nothing is extracted"
}

# The wheelhouse directory $1 holds exactly the files its SHA256SUMS lists, besides the names this
# tool reserves (SHA256SUMS itself, manifest.json, its signatures, the SBOM: none a distribution
# pip could install), each a regular file: a file that is not listed is refused, as pip would
# install it all the same. $2 is what the messages call it: the archive, or the directory.
check_files() {
    listed=$nl
    line_number=0
    problems=
    while IFS= read -r line || [ -n "$line" ]; do
        line_number=$((line_number + 1))
        digest=${line%% *}
        name=${line#"$digest"}
        case $name in
        '  '?* | ' *'?*) name=${name#??} ;;
        *) name= ;;
        esac
        case $digest in
        '' | *[!0-9a-fA-F]*) name= ;;
        esac
        [ ${#digest} -eq 64 ] || name=
        [ -n "$name" ] || die "$2: line $line_number of SHA256SUMS is not a sha256 and a file name"
        case $name in
        . | .. | */*) die "$2: SHA256SUMS lists $(shown "$name"), which is not a file name" ;;
        esac
        if [ ! -e "$1/$name" ] && [ ! -L "$1/$name" ]; then
            printf '%s: listed in SHA256SUMS, missing\n' "$(shown "$name")" >&2
            problems=1
        fi
        listed=$listed$name$nl
    done <"$1/SHA256SUMS"
    for path in "$1"/* "$1"/.*; do
        name=${path##*/}
        case $name in
        . | ..) continue ;;
        esac
        # A pattern that matched nothing stays as it is.
        [ -e "$path" ] || [ -L "$path" ] || continue
        # The index `index` writes: its pages' directory (pip does not look into it), and the
        # METADATA beside each listed wheel.
        if [ "$name" = simple ] && [ -d "$path" ] && [ ! -L "$path" ]; then
            # Nothing but directories and regular files below it.
            odd=$(find "$path" ! -type f ! -type d | head -n 1)
            [ -z "$odd" ] && continue
            problem="holds $(shown "${odd#"$1"/}"), which is neither a file nor a directory"
            printf '%s: %s\n' "$(shown "$name")" "$problem" >&2
            problems=1
            continue
        fi
        case $name in
        *"$nl"*) ;;
        *.whl.metadata)
            case $listed in
            *"$nl${name%.metadata}$nl"*) [ -f "$path" ] && [ ! -L "$path" ] && continue ;;
            esac
            ;;
        esac
        if [ -L "$path" ] || [ ! -f "$path" ]; then
            problem='not a regular file'
        else
            case $name in
            manifest.json | SHA256SUMS | manifest.json.asc | manifest.json.sshsig | sbom.cdx.json) continue ;;
            *"$nl"*) ;;
            *)
                case $listed in
                *"$nl$name$nl"*) continue ;;
                esac
                ;;
            esac
            problem='not listed in SHA256SUMS'
        fi
        printf '%s: %s\n' "$(shown "$name")" "$problem" >&2
        problems=1
    done
    [ -z "$problems" ] || die "$2 does not hold exactly the files its SHA256SUMS lists"
}

# Every file of a wheelhouse directory $1 against its SHA256SUMS; only the failures are shown.
check_sums() {
    need sha256sum "check $2"
    if ! report=$(cd "$1" && sha256sum -c SHA256SUMS 2>&1); then
        printf '%s\n' "$report" | grep -v ': OK$' >&2 || true
        die "$2 does not match its SHA256SUMS"
    fi
}

bundle=${1:-${WHEELHOUSE:-$default_bundle}}
python=${PYTHON:-python3}

# What to install is settled first, so that a misconfigured container fails before any work.
if [ -n "$lock_file" ]; then
    [ -f "$lock_file" ] || die "$lock_file is missing"
    set -- --require-hashes -r "$lock_file"
elif [ -n "${REQUIREMENTS:-}" ]; then
    [ -f "$REQUIREMENTS" ] || die "$REQUIREMENTS is missing"
    set -- -r "$REQUIREMENTS"
else
    die "nothing to install: set REQUIREMENTS to a requirements file, or make the script with --lock FILE"
fi
if [ -n "$target_dir" ]; then
    # --upgrade: a restarted pod runs its init containers again, into what the last run left.
    set -- "$@" --target "$target_dir" --upgrade
fi
command -v "$python" >/dev/null 2>&1 || die "$python is not found (set PYTHON to the interpreter)"

# Made with --index-url: the index that `serve` runs holds only verified files; binary files only,
# so nothing is built in the container, and hashes checked when the lock gives them.
if [ -n "$index_url" ]; then
    say "installing $* from $index_url"
    # pip trusts plain HTTP only on localhost: the index's host is named for it. --isolated: no
    # configuration file or PIP_* variable can add another index.
    case $index_url in
    http://*)
        host=${index_url#http://}
        host=${host%%/*}
        host=${host##*@}
        set -- --trusted-host "$host" "$@"
        ;;
    esac
    "$python" -m pip --isolated install --index-url "$index_url" --only-binary=:all: --no-cache-dir \
        --disable-pip-version-check --no-input "$@" || die "pip install failed (exit status $?)"
    say "done"
    exit 0
fi

case $bundle in
*.tgz | *.tar.gz)
    [ -f "$bundle" ] || die "$bundle is missing"
    sidecar=$bundle.sha256
    [ -f "$sidecar" ] || die "$sidecar is missing"
    need sha256sum "check $bundle"
    need tar "extract $bundle"
    # The comparison `sha256sum -c` makes, done here so that a mismatch can name both digests.
    name=${bundle##*/}
    expected=
    while read -r digest listed || [ -n "$digest" ]; do
        listed=${listed#\*}
        if [ "$listed" = "$name" ] || [ "${listed##*/}" = "$name" ]; then
            expected=$(printf '%s' "$digest" | tr 'A-F' 'a-f')
        fi
    done <"$sidecar"
    [ -n "$expected" ] || die "$sidecar says nothing about $name"
    actual=$(sha256sum <"$bundle") || die "cannot read $bundle"
    actual=${actual%% *}
    [ "$actual" = "$expected" ] || die "$bundle sha256 mismatch: expected $expected, got $actual"
    check_entries "$bundle"
    scratch=$(mktemp -d "${TMPDIR:-/tmp}/wheelhouse.XXXXXX") || die "cannot make a temporary directory (set TMPDIR to a writable one)"
    trap 'rm -rf "$scratch"' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    tar xzf "$bundle" -C "$scratch" || die "cannot extract $bundle into $scratch"
    wheelhouse=$scratch/wheelhouse
    [ -d "$wheelhouse" ] && [ ! -L "$wheelhouse" ] || die "$bundle holds no wheelhouse/ directory"
    # What was packed is known only from SHA256SUMS: an archive without it proves nothing.
    [ -f "$wheelhouse/SHA256SUMS" ] || die "$bundle has no wheelhouse/SHA256SUMS: nothing says which files belong in it"
    check_files "$wheelhouse" "$bundle"
    check_sums "$wheelhouse" "$bundle"
    ;;
*)
    if [ -d "$bundle" ] && [ ! -f "$bundle/SHA256SUMS" ] && [ -f "$bundle/wheelhouse.tgz" ]; then
        die "$bundle holds a bundle, not a wheelhouse: give $bundle/wheelhouse.tgz"
    elif [ -d "$bundle" ] && [ -f "$bundle/SHA256SUMS" ]; then
        wheelhouse=$bundle
        check_files "$wheelhouse" "$bundle"
        check_sums "$wheelhouse" "$bundle"
    elif [ -d "$bundle" ]; then
        # Not made by this tool, so nothing lists its files: used as it is, as documented.
        wheelhouse=$bundle
        say "$bundle has no SHA256SUMS: its files are not checked"
    elif [ -e "$bundle" ]; then
        die "$bundle is neither a directory nor a .tgz archive"
    else
        die "$bundle is missing"
    fi
    ;;
esac

say "installing $* from $wheelhouse"
"$python" -m pip install --no-index --find-links "$wheelhouse" --no-cache-dir \
    --disable-pip-version-check --no-input "$@" || die "pip install failed (exit status $?)"
say "done"
"#;

/// The whole script: a header saying how it was made and how to run it, the settings baked in
/// as shell-quoted assignments, then [`BODY`].
pub fn script(lock: Option<&str>, target: Option<&str>, index_url: Option<&str>, program: &str) -> String {
    let mut command = format!("{program} install-script");
    for (flag, value) in [("--lock", lock), ("--target", target), ("--index-url", index_url)] {
        if let Some(value) = value {
            command.push_str(&format!(" {flag} {}", shell_quote(value)));
        }
    }
    let installs = match lock {
        Some(_) => "the lock file below, with --require-hashes",
        None => "the requirements file named by REQUIREMENTS",
    };
    let into = match target {
        Some(_) => "into the --target directory below",
        None => "into the environment of PYTHON",
    };
    let source = match index_url {
        Some(_) => "from the index below (`serve`), binary files only",
        None => "offline, from a wheelhouse bundle",
    };
    format!(
        "#!/bin/sh
# Installs Python packages with pip, {source}. Made by:
#   {command}
#
# Usage: sh install.sh [BUNDLE]
#   BUNDLE, else $WHEELHOUSE, else {DEFAULT_BUNDLE}, is one of:
#   - an archive from `{program} pack-wheelhouse` (.tgz): checked against the .sha256 sidecar
#     beside it, refused if an entry is not a file in wheelhouse/, extracted to a temporary
#     directory ($TMPDIR, else /tmp), removed afterwards;
#   - a wheelhouse directory: used where it is.
# The wheelhouse must hold exactly the files its SHA256SUMS lists, each with its sha256, besides
# SHA256SUMS, manifest.json, its signatures and the SBOM; only a directory may have no
# SHA256SUMS, and then its files are not checked.
# It installs {installs}, {into}.
#   PYTHON        the interpreter that runs pip (default: python3)
#   REQUIREMENTS  the requirements file to install (read only when made without --lock)
# Exit status: 0 when everything is installed; 1 with an `install-script:` line on stderr.
set -eu

default_bundle={}
lock_file={}
target_dir={}
index_url={}
{BODY}",
        shell_quote(DEFAULT_BUNDLE),
        shell_quote(lock.unwrap_or("")),
        shell_quote(target.unwrap_or("")),
        shell_quote(index_url.unwrap_or("")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::manifest::RESERVED_NAMES;

    #[test]
    fn the_settings_are_baked_in_quoted() {
        let text = script(Some("/app/it's.lock.txt"), None, None, "cargo xtask");
        assert!(
            text.contains(
                "\ndefault_bundle=/wheelhouse/wheelhouse.tgz\nlock_file='/app/it'\\''s.lock.txt'\ntarget_dir=''\nindex_url=''\n"
            ),
            "{text}"
        );
        assert!(text.contains("#   cargo xtask install-script --lock '/app/it'\\''s.lock.txt'\n"), "{text}");
        assert!(text.starts_with("#!/bin/sh\n"));
    }

    #[test]
    fn the_names_a_wheelhouse_may_hold_unlisted_are_the_reserved_names() {
        let pattern = format!("\n            {}) continue ;;\n", RESERVED_NAMES.join(" | "));
        assert!(BODY.contains(&pattern), "{pattern}");
    }
}
