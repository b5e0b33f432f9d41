#!/usr/bin/env bash
# Refresh the vendored front-end libraries from the npm registry.
# The UI must load nothing from the internet at run time, so htmx and ECharts live in
# proctor_ui/static/vendor/ and are committed; this script is how they get there, and
# VENDOR.md records exactly which tarball each file came from (URL + sha512 integrity) so a
# reviewer can check the bytes. Usage: scripts/update-vendor.sh [HTMX_SPEC] [ECHARTS_SPEC]
# (defaults: htmx.org@2 = newest 2.x, never htmx 4; echarts@6 = newest 6.x).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
vendor="$here/proctor_ui/static/vendor"
htmx_spec=${1:-htmx.org@2}
echarts_spec=${2:-echarts@6}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# pack SPEC: downloads the tarball into $work, prints "name version filename integrity"
pack() {
  (cd "$work" && npm pack "$1" --json 2>/dev/null) | node -e '
    let s = ""; process.stdin.on("data", d => s += d).on("end", () => {
      const p = JSON.parse(s)[0];
      console.log([p.name, p.version, p.filename, p.integrity].join(" "));
    });'
}

# install NAME VERSION TGZ INTEGRITY DEST FILE_IN_PACKAGE...
install_pkg() {
  local name=$1 version=$2 tgz=$3 integrity=$4 dest=$5; shift 5
  local unpack="$work/$name"
  mkdir -p "$unpack" && tar -xzf "$work/$tgz" -C "$unpack"
  rm -rf "${vendor:?}/$dest" && mkdir -p "$vendor/$dest"
  for f in "$@"; do cp "$unpack/package/$f" "$vendor/$dest/"; done
  local licence
  licence=$(node -p "require('$unpack/package/package.json').license")
  # the tarball's path on the npm registry (the registry's own host is left out on purpose:
  # the path is what identifies the tarball, `npm pack NAME@VERSION` fetches it again)
  local url
  url=$(npm view "$name@$version" dist.tarball | sed -E 's#^[a-z]+://[^/]+/##')
  printf '| %s | %s | %s | %s | `%s` | %s |\n' "$name" "$version" "$licence" \
    "$url" "$integrity" "$(printf '%s ' "$@" | sed 's/ $//')" >>"$work/table.md"
}

mkdir -p "$vendor"
read -r hname hver htgz hint < <(pack "$htmx_spec")
case "$hver" in 2.*) ;; *) echo "htmx $hver is not 2.x; refusing (the UI is written for htmx 2)" >&2; exit 1;; esac
install_pkg "$hname" "$hver" "$htgz" "$hint" htmx dist/htmx.min.js LICENSE
read -r ename ever etgz eint < <(pack "$echarts_spec")
install_pkg "$ename" "$ever" "$etgz" "$eint" echarts dist/echarts.min.js LICENSE NOTICE

{
  echo "# Vendored front-end libraries"
  echo
  echo "Served from /static/vendor/; nothing is loaded from the internet at run time."
  echo "Written by \`scripts/update-vendor.sh\` (run it again to update; it rewrites this file)."
  echo "The integrity is the npm registry's sha512 of the tarball the files were taken from."
  echo
  echo "| package | version | licence | npm tarball (registry path) | integrity | files |"
  echo "| --- | --- | --- | --- | --- | --- |"
  cat "$work/table.md"
} >"$vendor/VENDOR.md"
echo "vendored $hname $hver and $ename $ever into $vendor"
