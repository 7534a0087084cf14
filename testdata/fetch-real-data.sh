#!/usr/bin/env bash
# Build the folder of real head volumes that defacer's tests read ($DEFACER_DATA, by default
# testdata/real) from their public sources: two Debian packages, one PyPI wheel and four
# GitHub repositories, plus two files derived here by the recipes in testdata/recipes/.
# testdata/README.md says what each file is, where it comes from and under which license.
#
# Usage: testdata/fetch-real-data.sh [DEST]        (DEST defaults to testdata/real)
#
# Needs: bash, git, python3 with pip, numpy, nibabel and pydicom, gzip, sha256sum (or shasum),
# and for the Debian packages either apt-get (Debian, Ubuntu) or the two .deb files already
# downloaded into $DEB_DIR; dpkg-deb, or ar + tar, to unpack them.
#
# Every file is checked against testdata/recipes/SHA256SUMS, so a source that changed is
# reported rather than silently used. Running it again only fetches what is missing or wrong.
# It writes only inside DEST and one temporary folder, which it removes on exit.
#
# Environment:
#   DEB_DIR       folder holding mricron-data_*.deb and invesalius-examples_*.deb; apt-get
#                 download is used when a package is not found there.
#   GIT_BASE_URL  where the repositories live (default https://github.com); a mirror must
#                 keep GitHub's owner/name.git layout.
set -euo pipefail

die() { echo "fetch-real-data: $*" >&2; exit 1; }
say() { echo "fetch-real-data: $*" >&2; }

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RECIPES="$HERE/recipes"
SUMS="$RECIPES/SHA256SUMS"
DEST="${1:-$HERE/real}"
GIT_BASE_URL="${GIT_BASE_URL:-https://github.com}"
DEB_DIR="${DEB_DIR:-}"

[ "$#" -le 1 ] || die "usage: $0 [DEST]"
[ -f "$SUMS" ] || die "$SUMS is missing; run this script from a defacer checkout"

# -- tools -------------------------------------------------------------------------------------
need_tool() { command -v "$1" >/dev/null 2>&1 || die "'$1' is not installed; $2"; }
need_tool git "install git"
need_tool python3 "install Python 3"
need_tool gzip "install gzip"
if command -v sha256sum >/dev/null 2>&1; then
  sha256() { sha256sum "$@"; }
elif command -v shasum >/dev/null 2>&1; then
  sha256() { shasum -a 256 "$@"; }
else
  die "neither sha256sum nor shasum is installed; install coreutils"
fi
python3 -c 'import numpy, nibabel, pydicom' 2>/dev/null ||
  die "python3 needs numpy, nibabel and pydicom: pip install numpy nibabel pydicom"
python3 -m pip --version >/dev/null 2>&1 || die "python3 has no pip; install python3-pip"

mkdir -p "$DEST"
DEST="$(cd "$DEST" && pwd)"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/defacer-real-data.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
# Keep pip's cache and Python's bytecode out of the user's folders.
export PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1

# -- checksums ---------------------------------------------------------------------------------
# Lines of SHA256SUMS whose path starts with $1.
sums_under() { grep -E "^[0-9a-f]{64}  $1" "$SUMS" || true; }

# True when every listed file under prefix $2 exists in folder $1 with the right checksum.
all_good() {
  local list
  list="$(sums_under "$2")"
  [ -n "$list" ] || die "SHA256SUMS lists nothing under $2"
  (cd "$1" && printf '%s\n' "$list" | sha256 -c --status - 2>/dev/null)
}

# Fail naming every file under prefix $2 in folder $1 that is missing or differs.
check_or_die() {
  local list bad
  list="$(sums_under "$2")"
  [ -n "$list" ] || die "SHA256SUMS lists nothing under $2"
  [ -d "$1" ] || die "$1 is missing"
  bad="$(cd "$1" && { printf '%s\n' "$list" | sha256 -c - 2>/dev/null | grep -v ': OK$' || true; })"
  [ -z "$bad" ] || die "these files from $3 differ from testdata/recipes/SHA256SUMS (did the source change?):
$bad"
}

# Copy the named files or folders from a checked staging folder into DEST, replacing what was there.
install_from() { # staging_root path...
  local root="$1" p
  shift
  for p in "$@"; do
    mkdir -p "$(dirname "$DEST/$p")"
    rm -rf "${DEST:?}/$p"
    cp -R "$root/$p" "$DEST/$p"
  done
}

# -- Debian packages ---------------------------------------------------------------------------
get_deb() { # package -> path of its .deb in $TMP/deb
  local pkg="$1" found=""
  mkdir -p "$TMP/deb"
  if [ -n "$DEB_DIR" ]; then
    found="$(ls "$DEB_DIR/${pkg}"_*.deb 2>/dev/null | tail -n 1 || true)"
  fi
  if [ -n "$found" ]; then
    cp "$found" "$TMP/deb/"
  else
    command -v apt-get >/dev/null 2>&1 ||
      die "no apt-get to download the Debian package $pkg; download ${pkg}_*.deb from Debian yourself and set DEB_DIR to its folder"
    say "apt-get download $pkg"
    (cd "$TMP/deb" && apt-get download "$pkg" >/dev/null 2>&1) ||
      die "apt-get download $pkg failed; run 'apt-get update' (Debian 12+ or Ubuntu with universe), or set DEB_DIR"
  fi
  found="$(ls "$TMP/deb/${pkg}"_*.deb 2>/dev/null | tail -n 1 || true)"
  [ -n "$found" ] || die "no ${pkg}_*.deb after download"
  echo "$found"
}

unpack_deb() { # deb dir
  mkdir -p "$2"
  if command -v dpkg-deb >/dev/null 2>&1; then
    dpkg-deb -x "$1" "$2"
  else
    need_tool ar "install dpkg or binutils (for ar) to unpack $1"
    local member
    member="$(ar t "$1" | grep '^data\.tar' || true)"
    [ -n "$member" ] || die "$1: no data.tar member"
    (cd "$2" && ar p "$1" "$member" | case "$member" in
      *.xz) xz -dc ;; *.zst) zstd -dc ;; *.gz) gzip -dc ;; *) cat ;;
    esac | tar -x -f -) || die "$1: could not unpack $member"
  fi
}

fetch_mricron() {
  if all_good "$DEST" "mri/ch2" && all_good "$DEST" "licenses/mricron-data"; then
    say "mri/ch2.nii.gz, mri/ch2bet.nii.gz: already there"
    return
  fi
  local deb x="$TMP/mricron" s="$TMP/stage-mricron"
  deb="$(get_deb mricron-data)"
  unpack_deb "$deb" "$x"
  mkdir -p "$s/mri" "$s/licenses"
  cp "$x/usr/share/mricron/templates/ch2.nii.gz" "$x/usr/share/mricron/templates/ch2bet.nii.gz" "$s/mri/"
  cp "$x/usr/share/doc/mricron-data/copyright" "$s/licenses/mricron-data.copyright"
  check_or_die "$s" "mri/ch2" "$(basename "$deb")"
  check_or_die "$s" "licenses/mricron-data" "$(basename "$deb")"
  install_from "$s" mri/ch2.nii.gz mri/ch2bet.nii.gz licenses/mricron-data.copyright
  say "mri/ch2.nii.gz, mri/ch2bet.nii.gz: from $(basename "$deb")"
}

# The CT head comes as an InVesalius project; the NIfTI and the DICOM series are derived from
# it (testdata/recipes/). The NIfTI is compared on its uncompressed bytes so a different zlib
# does not count as a different volume.
INV_NII_RAW_SHA256=e93681c33e58130feff5dbf0922edb946c98db93eec469d987c425a976da66fb
nii_ok() { [ -f "$1" ] && [ "$(gzip -dc "$1" | sha256 | cut -c1-64)" = "$INV_NII_RAW_SHA256" ]; }

fetch_invesalius() {
  local s="$TMP/stage-inv"
  mkdir -p "$s/ct" "$s/licenses"
  if nii_ok "$DEST/ct/invesalius_ct.nii.gz" && all_good "$DEST" "licenses/invesalius-examples"; then
    say "ct/invesalius_ct.nii.gz: already there"
  else
    local deb x="$TMP/invesalius"
    deb="$(get_deb invesalius-examples)"
    unpack_deb "$deb" "$x"
    cp "$x/usr/share/doc/invesalius-examples/copyright" "$s/licenses/invesalius-examples.copyright"
    check_or_die "$s" "licenses/invesalius-examples" "$(basename "$deb")"
    python3 "$RECIPES/inv3_to_nifti.py" \
      "$x/usr/share/doc/invesalius-examples/examples/Cranium.inv3" "$s/ct/invesalius_ct.nii.gz"
    nii_ok "$s/ct/invesalius_ct.nii.gz" ||
      die "ct/invesalius_ct.nii.gz made from $(basename "$deb") differs from the reference volume (other nibabel version or package?)"
    install_from "$s" ct/invesalius_ct.nii.gz licenses/invesalius-examples.copyright
    say "ct/invesalius_ct.nii.gz: made from $(basename "$deb")"
  fi
  # The series is checked by reading it back against the NIfTI (its UIDs are made here, so no
  # checksum can be published for it); it is remade when anything differs.
  if python3 "$RECIPES/nifti_to_ct_dicom.py" --check "$DEST/ct/invesalius_ct.nii.gz" \
    "$DEST/ct/invesalius_ct_dicom" 2>/dev/null; then
    say "ct/invesalius_ct_dicom/: already there"
  else
    python3 "$RECIPES/nifti_to_ct_dicom.py" "$DEST/ct/invesalius_ct.nii.gz" "$s/ct/invesalius_ct_dicom"
    install_from "$s" ct/invesalius_ct_dicom
    say "ct/invesalius_ct_dicom/: made from ct/invesalius_ct.nii.gz"
  fi
}

# -- PyPI --------------------------------------------------------------------------------------
fetch_pydeface() {
  if all_good "$DEST" "templates/pydeface/"; then
    say "templates/pydeface/: already there"
    return
  fi
  local s="$TMP/stage-pydeface" w
  say "pip download pydeface==2.1.0"
  # Only the wheel's data files are used, so the local Python need not meet pydeface's
  # Requires-Python: ask for the (pure Python) wheel as a 3.12 interpreter would.
  python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --dest "$TMP/pip" pydeface==2.1.0 ||
    die "pip download pydeface==2.1.0 failed (is PyPI reachable?)"
  w="$(ls "$TMP"/pip/pydeface-2.1.0-*.whl | head -n 1)"
  mkdir -p "$s/templates/pydeface"
  python3 - "$w" "$s/templates/pydeface" <<'EOF'
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
wanted = {
    "pydeface/data/mean_reg2mean.nii.gz": "mean_reg2mean.nii.gz",
    "pydeface/data/facemask.nii.gz": "facemask.nii.gz",
    "pydeface-2.1.0.dist-info/licenses/LICENSE.txt": "LICENSE",
}
with zipfile.ZipFile(wheel) as z:
    names = set(z.namelist())
    for member, name in wanted.items():
        if member not in names:
            sys.exit(f"{wheel}: has no {member}")
        with open(f"{out}/{name}", "wb") as f:
            f.write(z.read(member))
EOF
  check_or_die "$s" "templates/pydeface/" "$(basename "$w")"
  install_from "$s" templates/pydeface
  say "templates/pydeface/: from $(basename "$w")"
}

# -- GitHub ------------------------------------------------------------------------------------
# Fetch one commit of a repository, with only the blobs under the given paths.
# The commits are the ones the checksums were taken from; if the host will not serve a commit
# by id, the default branch is used and the checksums decide whether it still fits.
git_get() { # owner/name commit dir path...
  local repo="$1" commit="$2" dir="$3"
  shift 3
  say "git: $repo @ ${commit:0:12}"
  git init -q "$dir"
  git -C "$dir" remote add origin "$GIT_BASE_URL/$repo.git"
  git -C "$dir" config core.sparseCheckout true
  printf '/%s\n' "$@" >"$dir/.git/info/sparse-checkout"
  if git -C "$dir" fetch -q --depth 1 --filter=blob:none origin "$commit" 2>/dev/null; then
    git -C "$dir" checkout -q FETCH_HEAD || die "git checkout of $repo @ $commit failed"
  else
    say "git: $repo will not serve $commit by id; taking its default branch"
    git -C "$dir" fetch -q --depth 1 --filter=blob:none origin HEAD ||
      die "could not fetch $GIT_BASE_URL/$repo.git (network? repository moved?)"
    git -C "$dir" checkout -q FETCH_HEAD || die "git checkout of $repo failed"
  fi
}

copy_series() { # from_dir to_dir  (gunzips *.dcm.gz)
  mkdir -p "$2"
  local f
  for f in "$1"/*; do
    case "$f" in
      *.dcm.gz) gzip -dc "$f" >"$2/$(basename "$f" .gz)" ;;
      *.dcm) cp "$f" "$2/" ;;
    esac
  done
}

fetch_philips() {
  if all_good "$DEST" "mri/philips_mprage_t1/" && all_good "$DEST" "licenses/dcm_qa_philips_enh"; then
    say "mri/philips_mprage_t1/: already there"
    return
  fi
  local r="$TMP/philips" s="$TMP/stage-philips"
  # Classic (one slice a file) export of series 1301, the 3D T1 MPRAGE; gzip'd in the repo.
  git_get neurolabusc/dcm_qa_philips_enh cbd1600edc905baaa8728fdcfff6252eced526d2 "$r" \
    'In/cl/1301_*' LICENSE
  mkdir -p "$s/licenses"
  copy_series "$r/In/cl" "$s/mri/philips_mprage_t1"
  cp "$r/LICENSE" "$s/licenses/dcm_qa_philips_enh.LICENSE"
  check_or_die "$s" "mri/philips_mprage_t1/" neurolabusc/dcm_qa_philips_enh
  check_or_die "$s" "licenses/dcm_qa_philips_enh" neurolabusc/dcm_qa_philips_enh
  install_from "$s" mri/philips_mprage_t1 licenses/dcm_qa_philips_enh.LICENSE
}

fetch_decubitus() {
  if all_good "$DEST" "mri/siemens_t1_2d_hf" && all_good "$DEST" "licenses/dcm_qa_decubitus"; then
    say "mri/siemens_t1_2d_hfs/, mri/siemens_t1_2d_hfp/: already there"
    return
  fi
  local r="$TMP/decubitus" s="$TMP/stage-decubitus"
  # The sagittal T1 2D FLASH of the same man, head first supine and head first prone.
  git_get neurolabusc/dcm_qa_decubitus 92cd635dc0a8f971d0e1d4e4ce69efff70fdc04e "$r" \
    'In/HFS/3_t1_fl2d_sag/' 'In/HFP/2_t1_fl2d_sag/' LICENSE
  mkdir -p "$s/licenses"
  copy_series "$r/In/HFS/3_t1_fl2d_sag" "$s/mri/siemens_t1_2d_hfs"
  copy_series "$r/In/HFP/2_t1_fl2d_sag" "$s/mri/siemens_t1_2d_hfp"
  cp "$r/LICENSE" "$s/licenses/dcm_qa_decubitus.LICENSE"
  check_or_die "$s" "mri/siemens_t1_2d_hf" neurolabusc/dcm_qa_decubitus
  check_or_die "$s" "licenses/dcm_qa_decubitus" neurolabusc/dcm_qa_decubitus
  install_from "$s" mri/siemens_t1_2d_hfs mri/siemens_t1_2d_hfp licenses/dcm_qa_decubitus.LICENSE
}

fetch_ge_ct() {
  if all_good "$DEST" "ct/ge_tilted_ct/" && all_good "$DEST" "licenses/dcm_qa_ct"; then
    say "ct/ge_tilted_ct/: already there"
    return
  fi
  local r="$TMP/dcm_qa_ct" s="$TMP/stage-ge"
  git_get neurolabusc/dcm_qa_ct d03e30e4c5c8ad07bf16422b96efc3e91e233dc5 "$r" 'In/GE/' LICENSE
  mkdir -p "$s/licenses"
  copy_series "$r/In/GE" "$s/ct/ge_tilted_ct"
  cp "$r/LICENSE" "$s/licenses/dcm_qa_ct.LICENSE"
  check_or_die "$s" "ct/ge_tilted_ct/" neurolabusc/dcm_qa_ct
  check_or_die "$s" "licenses/dcm_qa_ct" neurolabusc/dcm_qa_ct
  install_from "$s" ct/ge_tilted_ct licenses/dcm_qa_ct.LICENSE
}

fetch_niivue() {
  if all_good "$DEST" "mri/t2w_partial_face" && all_good "$DEST" "templates/mni152/" &&
    all_good "$DEST" "licenses/niivue-demo-images"; then
    say "mri/t2w_partial_face.nii.gz, templates/mni152/: already there"
    return
  fi
  local r="$TMP/niivue" s="$TMP/stage-niivue"
  git_get niivue/niivue-demo-images f6f98294c1fa89a3a32e8a44eab92368374150a0 "$r" \
    register/T2w.nii.gz register/MNI152_T1_2mm.nii.gz register/mniMask.nii.gz \
    register/COPYING_EXT.txt LICENSE
  mkdir -p "$s/mri" "$s/templates/mni152" "$s/licenses"
  cp "$r/register/T2w.nii.gz" "$s/mri/t2w_partial_face.nii.gz"
  cp "$r/register/MNI152_T1_2mm.nii.gz" "$r/register/mniMask.nii.gz" "$s/templates/mni152/"
  cp "$r/register/COPYING_EXT.txt" "$s/templates/mni152/COPYING"
  cp "$r/LICENSE" "$s/licenses/niivue-demo-images.LICENSE"
  check_or_die "$s" "mri/t2w_partial_face" niivue/niivue-demo-images
  check_or_die "$s" "templates/mni152/" niivue/niivue-demo-images
  check_or_die "$s" "licenses/niivue-demo-images" niivue/niivue-demo-images
  install_from "$s" mri/t2w_partial_face.nii.gz templates/mni152 licenses/niivue-demo-images.LICENSE
}

fetch_mricron
fetch_invesalius
fetch_pydeface
fetch_philips
fetch_decubitus
fetch_ge_ct
fetch_niivue

check_or_die "$DEST" "" "the finished folder"
nii_ok "$DEST/ct/invesalius_ct.nii.gz" || die "ct/invesalius_ct.nii.gz differs from the reference volume"
python3 "$RECIPES/nifti_to_ct_dicom.py" --check "$DEST/ct/invesalius_ct.nii.gz" "$DEST/ct/invesalius_ct_dicom" ||
  die "ct/invesalius_ct_dicom/ does not match ct/invesalius_ct.nii.gz"
say "done: $DEST (use it with DEFACER_DATA=$DEST)"
