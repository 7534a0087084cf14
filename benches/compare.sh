#!/usr/bin/env bash
# Whole-command timings, measured side by side in one run (the machine may be noisy: compare
# ratios within this run, never absolute figures across runs).
#
#   benches/compare.sh [RESULTS_DIR]
#
# Needs: a release build (cargo build --release), hyperfine, python3 with nibabel and quickshear
# (pip install quickshear), and the real volumes under $DEFACER_DATA (default testdata/real).
# Reports, for ch2.nii.gz and the Philips DICOM series:
#   - the I/O floor: `gzip -dc | gzip -6` of the same data (NIfTI), `cp -r` (DICOM);
#   - defacer info (load only), defacer deface per method;
#   - quickshear on ch2 with the ch2bet brain mask;
#   - defacer check (21 renders + face detection) on ch2 and on ch2 padded to 256³;
#   - a folder of 20 volumes with --jobs 1 and --jobs 2.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${DEFACER_DATA:-testdata/real}"
BIN=target/release/defacer
OUT="${1:-$(mktemp -d)}"
mkdir -p "$OUT"
[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 1; }
CH2="$DATA/mri/ch2.nii.gz"
BET="$DATA/mri/ch2bet.nii.gz"
PHILIPS="$DATA/mri/philips_mprage_t1"
W="$OUT/work"
mkdir -p "$W"
python3 - "$BET" "$W/ch2bet_mask.nii.gz" <<'PY'
import sys, nibabel as nib, numpy as np
i = nib.load(sys.argv[1]); m = (np.asarray(i.dataobj) > 0).astype(np.uint8)
nib.save(nib.Nifti1Image(m, i.affine, i.header), sys.argv[2])
PY
# ch2 centred in a 256³ grid: the size the issue names for check's speed
python3 - "$CH2" "$W/ch2_256.nii.gz" <<'PY'
import sys, nibabel as nib, numpy as np
i = nib.load(sys.argv[1]); a = np.asarray(i.dataobj)
big = np.zeros((256, 256, 256), a.dtype); o = [(256 - n) // 2 for n in a.shape]
big[o[0]:o[0] + a.shape[0], o[1]:o[1] + a.shape[1], o[2]:o[2] + a.shape[2]] = a
aff = i.affine.copy(); aff[:3, 3] -= aff[:3, :3] @ np.array(o, float)
nib.save(nib.Nifti1Image(big, aff), sys.argv[2])
PY

hyperfine --warmup 1 --runs 5 --export-json "$OUT/ch2.json" --export-markdown "$OUT/ch2.md" \
  -n floor-gzip "gzip -dc $CH2 | gzip -6 > $W/floor.nii.gz" \
  -n defacer-info "$BIN info $CH2" \
  -n remove "$BIN deface $CH2 -o $W/remove.nii.gz --overwrite" \
  -n blur "$BIN deface $CH2 -o $W/blur.nii.gz --method blur --overwrite" \
  -n reface "$BIN deface $CH2 -o $W/reface.nii.gz --method reface --overwrite" \
  -n quickshear "quickshear $CH2 $W/ch2bet_mask.nii.gz $W/quickshear.nii.gz" \
  -n check "$BIN check $CH2 || true" \
  -n check-256cube "$BIN check $W/ch2_256.nii.gz || true"

hyperfine --warmup 1 --runs 5 --export-json "$OUT/philips.json" --export-markdown "$OUT/philips.md" \
  -n floor-copy "rm -rf $W/cp && cp -r $PHILIPS $W/cp" \
  -n defacer-info "$BIN info $PHILIPS" \
  -n remove "$BIN deface $PHILIPS -o $W/philips-remove --overwrite" \
  -n blur "$BIN deface $PHILIPS -o $W/philips-blur --method blur --overwrite" \
  -n reface "$BIN deface $PHILIPS -o $W/philips-reface --method reface --overwrite"

# A folder of 20 volumes (copies of the bundled 2 mm head and of ch2).
rm -rf "$W/many" && mkdir -p "$W/many"
for n in $(seq -w 1 10); do
  cp testdata/sample/ch2_2mm.nii.gz "$W/many/small_$n.nii.gz"
  cp "$CH2" "$W/many/ch2_$n.nii.gz"
done
hyperfine --warmup 1 --runs 3 --export-json "$OUT/batch.json" --export-markdown "$OUT/batch.md" \
  -n jobs-1 "$BIN deface $W/many -o $W/many-out --jobs 1 --overwrite" \
  -n jobs-2 "$BIN deface $W/many -o $W/many-out --jobs 2 --overwrite"

python3 - "$OUT" <<'PY'
import json, sys, os
out = sys.argv[1]
for name, floor in [("ch2", "floor-gzip"), ("philips", "floor-copy"), ("batch", "jobs-1")]:
    r = {x["command"]: x["mean"] for x in json.load(open(os.path.join(out, name + ".json")))["results"]}
    f = r[floor]
    print(f"{name}: " + ", ".join(f"{k} {v:.3f}s ({v / f:.2f}x {floor})" for k, v in r.items()))
PY
