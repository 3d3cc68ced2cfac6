#!/usr/bin/env bash
# Downloads the public Pantheon+ release (Scolnic et al. 2022, Brout et al.
# 2022): the distance table and, with --covariance, the STAT+SYS covariance
# (about 50 MB), into a folder (default ./data). Point lumpy at it with
#   export LUMPY_DATA_PATH=$PWD/data
# The distance table itself ships in data/; the covariances (about 50 MB each) do not.
set -euo pipefail
dest=data
cov=0
for arg in "$@"; do
  case "$arg" in
    --covariance) cov=1 ;;
    -h|--help) sed -n '2,7p' "$0"; echo "usage: $0 [--covariance] [folder]"; exit 0 ;;
    *) dest="$arg" ;;
  esac
done
base="https://raw.githubusercontent.com/PantheonPlusSH0ES/DataRelease/main/Pantheon%2B_Data/4_DISTANCES_AND_COVAR"
mkdir -p "$dest"
fetch() {
  local url="$base/$1" out="$dest/$2"
  echo "== $url -> $out"
  if command -v curl >/dev/null; then curl -fL --retry 3 -o "$out.part" "$url"
  else wget -O "$out.part" "$url"; fi
  mv "$out.part" "$out"
}
fetch "Pantheon%2BSH0ES.dat" "Pantheon+SH0ES.dat"
[ "$cov" = 1 ] && fetch "Pantheon%2BSH0ES_STAT%2BSYS.cov" "Pantheon+SH0ES_STAT+SYS.cov"
rows=$(($(grep -vc '^#' "$dest/Pantheon+SH0ES.dat") - 1))
echo "== $rows supernovae in $dest/Pantheon+SH0ES.dat"
echo "export LUMPY_DATA_PATH=$(cd "$dest" && pwd)"
