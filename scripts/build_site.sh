#!/bin/sh
# Build the lesson website with Debian's jekyll and fail on broken internal links.
#
# Usage: scripts/build_site.sh [DESTINATION]     (default: _site)
#
# Needs /usr/bin/jekyll (Debian package `jekyll`) and python3. No gems, themes or
# plugins from elsewhere: the layouts and styles live in _layouts/, _includes/ and assets/.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-"$root/_site"}

if ! command -v jekyll >/dev/null 2>&1; then
    echo "build_site.sh: jekyll not found. Install Debian's package: sudo apt-get install jekyll" >&2
    exit 2
fi

# --safe: no custom plugins; --disable-disk-cache: leave no .jekyll-cache behind.
jekyll build --safe --disable-disk-cache --quiet --source "$root" --destination "$dest"
python3 "$root/scripts/check_links.py" "$dest"
