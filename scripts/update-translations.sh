#!/usr/bin/env bash
# Keep the proctor UI's English catalog in step with the Chinese strings in the code.
# Templates and Python are written in Chinese (`{{ _("考场") }}`, `gettext("...")`); this extracts
# every marked string (babel.cfg) into a messages.pot in a temporary directory, then updates
# proctor_ui/locale/en/LC_MESSAGES/messages.po from it (or creates it): new strings arrive empty,
# strings no longer in the code are dropped, and nothing is guessed (no fuzzy matching: a fuzzy
# entry would show a translation of some other sentence). Translate the empty entries, then run
# tests/unit/test_i18n_catalog.py, which names any string still without English.
# Usage: scripts/update-translations.sh   (PYBABEL=/path/to/pybabel to use another one)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
pybabel=${PYBABEL:-}
if [ -z "$pybabel" ]; then
  if [ -x .venv/bin/pybabel ]; then pybabel=.venv/bin/pybabel; else pybabel=pybabel; fi
fi
python=$(dirname "$(command -v "$pybabel")")/python
[ -x "$python" ] || python=python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
locale_dir=proctor_ui/locale
po="$locale_dir/en/LC_MESSAGES/messages.po"

"$pybabel" -q extract -F babel.cfg --project=examstation --add-location=file --sort-by-file --no-wrap \
  -o "$work/messages.pot" .
if [ -f "$po" ]; then
  cp "$po" "$work/before.po"
  "$pybabel" -q update -i "$work/messages.pot" -d "$locale_dir" -l en -D messages --no-fuzzy-matching \
    --ignore-obsolete --no-wrap
else
  "$pybabel" -q init -i "$work/messages.pot" -d "$locale_dir" -l en -D messages --no-wrap
fi
# Nothing changed but the extraction date: keep the file as it was (no churn in the history).
if [ -f "$work/before.po" ] && diff -q <(grep -v '^"POT-Creation-Date:' "$work/before.po") \
     <(grep -v '^"POT-Creation-Date:' "$po") >/dev/null; then
  cp "$work/before.po" "$po"
fi

# Name what is still untranslated, so the person running this knows what to write.
"$python" - "$po" <<'PY'
import sys
from babel.messages.pofile import read_po
with open(sys.argv[1], "rb") as f:
    catalog = read_po(f)
messages = [m for m in catalog if m.id]
missing = [m for m in messages if not (all(m.string) if isinstance(m.string, tuple) else m.string)]
print(f"{sys.argv[1]}: {len(messages)} strings, {len(missing)} without English")
for m in missing:
    where = ", ".join(sorted({path for path, _ in m.locations}))
    print(f"  {m.id!r}  ({where})")
PY
