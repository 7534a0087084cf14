//! The NIfTI-1 (348-byte) and NIfTI-2 (540-byte) header, read from its raw bytes.
//!
//! We decode the header block ourselves instead of using the `nifti` crate: that crate reads
//! NIfTI-1 only, panics computing the affine when `pixdim[0]` is 0, and rebuilds the header when
//! writing (resetting `scl_slope`/`scl_inter`). A defacer must write back the exact bytes it read
//! except the identifying fields, so the raw block is the source of truth and [`NiftiHeader`]'s
//! parsed fields are read-only views of it.

/// NIfTI-1 (348-byte header, 16-bit dims, 32-bit floats) or NIfTI-2 (540 bytes, 64-bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    One,
    Two,
}

/// The byte order of the header and of the voxel data (NIfTI uses one for both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteOrder {
    Little,
    Big,
}

/// Offset and width in bytes of a numeric header field.
#[derive(Debug, Clone, Copy)]
struct Field {
    off: usize,
    width: usize,
}

const fn f(off: usize, width: usize) -> Field {
    Field { off, width }
}

/// Offset and length of a text field.
#[derive(Debug, Clone, Copy)]
struct Text {
    off: usize,
    len: usize,
}

/// Where each field lives in one header version. Arrays are consecutive elements of `width`.
struct Layout {
    size: usize,
    magic: Text,
    dim: Field,
    intent_code: Field,
    datatype: Field,
    bitpix: Field,
    pixdim: Field,
    vox_offset: Field,
    scl_slope: Field,
    scl_inter: Field,
    xyzt_units: Field,
    descrip: Text,
    aux_file: Text,
    db_name: Option<Text>,
    qform_code: Field,
    sform_code: Field,
    /// quatern_b, quatern_c, quatern_d, qoffset_x, qoffset_y, qoffset_z.
    quatern: Field,
    /// srow_x, srow_y, srow_z (4 each).
    srow: Field,
    intent_name: Text,
    /// A legacy free-text field nothing reads (NIfTI-1 `data_type`, ANALYZE's; NIfTI-2
    /// `unused_str`), where converters and people have left names.
    legacy_text: (&'static str, Text),
}

const NIFTI1: Layout = Layout {
    size: 348,
    magic: Text { off: 344, len: 4 },
    dim: f(40, 2),
    intent_code: f(68, 2),
    datatype: f(70, 2),
    bitpix: f(72, 2),
    pixdim: f(76, 4),
    vox_offset: f(108, 4),
    scl_slope: f(112, 4),
    scl_inter: f(116, 4),
    xyzt_units: f(123, 1),
    descrip: Text { off: 148, len: 80 },
    aux_file: Text { off: 228, len: 24 },
    db_name: Some(Text { off: 14, len: 18 }),
    qform_code: f(252, 2),
    sform_code: f(254, 2),
    quatern: f(256, 4),
    srow: f(280, 4),
    intent_name: Text { off: 328, len: 16 },
    legacy_text: ("data_type", Text { off: 4, len: 10 }),
};

const NIFTI2: Layout = Layout {
    size: 540,
    magic: Text { off: 4, len: 8 },
    dim: f(16, 8),
    intent_code: f(504, 4),
    datatype: f(12, 2),
    bitpix: f(14, 2),
    pixdim: f(104, 8),
    vox_offset: f(168, 8),
    scl_slope: f(176, 8),
    scl_inter: f(184, 8),
    xyzt_units: f(500, 4),
    descrip: Text { off: 240, len: 80 },
    aux_file: Text { off: 320, len: 24 },
    db_name: None,
    qform_code: f(344, 4),
    sform_code: f(348, 4),
    quatern: f(352, 8),
    srow: f(400, 8),
    intent_name: Text { off: 508, len: 16 },
    legacy_text: ("unused_str", Text { off: 524, len: 15 }),
};

/// What a header made from scratch needs (see [`NiftiHeader::new_nifti1`]).
#[derive(Debug, Clone)]
pub struct NewHeader {
    pub dims: [usize; 4],
    pub datatype_code: i64,
    pub bitpix: i64,
    pub voxel_size: [f64; 3],
    pub scl_slope: f64,
    pub scl_inter: f64,
    /// The first three rows of the affine.
    pub srow: [[f64; 4]; 3],
    /// Placement copied from the file whose grid this is; `None`: sform code 2, qform unset.
    pub geometry: Option<Geometry>,
}

/// How a NIfTI file says where its voxels are: the qform and sform codes, the quaternion and
/// pixdim. A file written on the grid of another (a mask) carries these unchanged, so that
/// tools that compare codes as well as matrices (FSL, for one) take the two as aligned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geometry {
    pub qform_code: i64,
    pub sform_code: i64,
    /// quatern_b, quatern_c, quatern_d, qoffset_x, qoffset_y, qoffset_z.
    pub quatern: [f64; 6],
    /// pixdim\[0\] (qfac) to pixdim\[3\].
    pub pixdim: [f64; 4],
}

/// A parsed NIfTI header with the raw block it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct NiftiHeader {
    raw: Vec<u8>,
    version: Version,
    order: ByteOrder,
}

impl NiftiHeader {
    /// Parses the header at the start of `bytes` (which may be longer). The error says what is
    /// wrong, without the file name.
    pub fn parse(bytes: &[u8]) -> Result<NiftiHeader, String> {
        let (version, order) = detect(bytes)?;
        let size = layout(version).size;
        let raw = bytes.get(..size).ok_or_else(|| {
            format!(
                "truncated header: {} of {size} header bytes present",
                bytes.len()
            )
        })?;
        let h = NiftiHeader {
            raw: raw.to_vec(),
            version,
            order,
        };
        h.check_magic()?;
        Ok(h)
    }

    fn check_magic(&self) -> Result<(), String> {
        let m = self.text_bytes(self.layout().magic);
        // nibabel checks only the first four bytes of the NIfTI-2 magic; so do we, so that files
        // it accepts are accepted here too.
        let ok = match self.version {
            Version::One => m == b"n+1\0" || m == b"ni1\0",
            Version::Two => &m[..4] == b"n+2\0" || &m[..4] == b"ni2\0",
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "wrong magic {:?}: not a NIfTI file",
                String::from_utf8_lossy(m)
            ))
        }
    }

    fn layout(&self) -> &'static Layout {
        layout(self.version)
    }

    pub fn version(&self) -> Version {
        self.version
    }
    pub fn byte_order(&self) -> ByteOrder {
        self.order
    }
    /// The header block exactly as read (348 or 540 bytes, file byte order).
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }
    pub fn size(&self) -> usize {
        self.raw.len()
    }
    /// True for the single-file magic (`n+1`/`n+2`), false for a `.hdr`/`.img` pair (`ni1`/`ni2`).
    pub fn is_single_file(&self) -> bool {
        self.raw[self.layout().magic.off + 1] == b'+'
    }

    pub fn dim(&self) -> [i64; 8] {
        std::array::from_fn(|i| self.int_at(self.layout().dim, i))
    }
    pub fn pixdim(&self) -> [f64; 8] {
        std::array::from_fn(|i| self.float_at(self.layout().pixdim, i))
    }
    pub fn datatype_code(&self) -> i64 {
        self.int_at(self.layout().datatype, 0)
    }
    pub fn bitpix(&self) -> i64 {
        self.int_at(self.layout().bitpix, 0)
    }
    pub fn intent_code(&self) -> i64 {
        self.int_at(self.layout().intent_code, 0)
    }
    /// Where the voxel data starts, as stored (a float in NIfTI-1).
    pub fn vox_offset(&self) -> f64 {
        match self.version {
            Version::One => self.float_at(self.layout().vox_offset, 0),
            Version::Two => self.int_at(self.layout().vox_offset, 0) as f64,
        }
    }
    pub fn scl_slope(&self) -> f64 {
        self.float_at(self.layout().scl_slope, 0)
    }
    pub fn scl_inter(&self) -> f64 {
        self.float_at(self.layout().scl_inter, 0)
    }
    pub fn xyzt_units(&self) -> i64 {
        self.int_at(self.layout().xyzt_units, 0)
    }
    pub fn qform_code(&self) -> i64 {
        self.int_at(self.layout().qform_code, 0)
    }
    pub fn sform_code(&self) -> i64 {
        self.int_at(self.layout().sform_code, 0)
    }
    /// quatern_b, quatern_c, quatern_d.
    pub fn quatern(&self) -> [f64; 3] {
        std::array::from_fn(|i| self.float_at(self.layout().quatern, i))
    }
    /// qoffset_x, qoffset_y, qoffset_z.
    pub fn qoffset(&self) -> [f64; 3] {
        std::array::from_fn(|i| self.float_at(self.layout().quatern, 3 + i))
    }
    /// Where this header places its voxels (see [`Geometry`]).
    pub fn geometry(&self) -> Geometry {
        let [b, c, d] = self.quatern();
        let [x, y, z] = self.qoffset();
        let p = self.pixdim();
        Geometry {
            qform_code: self.qform_code(),
            sform_code: self.sform_code(),
            quatern: [b, c, d, x, y, z],
            pixdim: [p[0], p[1], p[2], p[3]],
        }
    }
    /// srow_x, srow_y, srow_z.
    pub fn srow(&self) -> [[f64; 4]; 3] {
        std::array::from_fn(|r| {
            std::array::from_fn(|c| self.float_at(self.layout().srow, 4 * r + c))
        })
    }
    pub fn descrip(&self) -> String {
        self.text(self.layout().descrip)
    }
    pub fn aux_file(&self) -> String {
        self.text(self.layout().aux_file)
    }
    pub fn intent_name(&self) -> String {
        self.text(self.layout().intent_name)
    }
    /// NIfTI-1 only (an Analyze 7.5 leftover).
    pub fn db_name(&self) -> Option<String> {
        self.layout().db_name.map(|t| self.text(t))
    }

    /// The free-text fields that can identify a person, with their raw bytes. Used both to report
    /// what was there and to clear it.
    pub fn identifying_text_fields(&self) -> Vec<(&'static str, &[u8])> {
        let l = self.layout();
        let mut v = vec![
            ("descrip", self.text_bytes(l.descrip)),
            ("aux_file", self.text_bytes(l.aux_file)),
        ];
        if let Some(db) = l.db_name {
            v.push(("db_name", self.text_bytes(db)));
        }
        v.push(("intent_name", self.text_bytes(l.intent_name)));
        v.push((l.legacy_text.0, self.text_bytes(l.legacy_text.1)));
        v
    }

    /// A copy of the raw block with the identifying text fields cleared, `descrip` set to
    /// `description` (cut to 80 bytes at a character boundary), and `vox_offset` set if given.
    pub fn scrubbed(&self, description: &str, vox_offset: Option<u64>) -> Vec<u8> {
        let l = self.layout();
        let mut out = self.raw.clone();
        let mut texts = vec![l.descrip, l.aux_file, l.intent_name, l.legacy_text.1];
        texts.extend(l.db_name);
        for t in texts {
            out[t.off..t.off + t.len].fill(0);
        }
        let desc = truncate_utf8(description, l.descrip.len);
        out[l.descrip.off..l.descrip.off + desc.len()].copy_from_slice(desc.as_bytes());
        let mut h = NiftiHeader { raw: out, ..*self };
        if let Some(off) = vox_offset {
            match self.version {
                Version::One => h.set_float(l.vox_offset, 0, off as f64),
                Version::Two => h.set_int(l.vox_offset, 0, off as i64),
            }
        }
        h.raw
    }

    /// A new little-endian NIfTI-1 header for a volume made in memory: sform holds the affine.
    /// With `NewHeader::geometry` the codes, quaternion and pixdim are those given; without,
    /// the sform is code 2 (aligned), qform is left unset (code 0), pixdim holds the voxel
    /// sizes.
    pub fn new_nifti1(new: &NewHeader, single_file: bool) -> NiftiHeader {
        let l = &NIFTI1;
        let mut h = NiftiHeader {
            raw: vec![0u8; l.size],
            version: Version::One,
            order: ByteOrder::Little,
        };
        h.set_int(f(0, 4), 0, l.size as i64);
        h.set_int(f(38, 1), 0, i64::from(b'r')); // `regular`, as nibabel and FSL write it
        h.set_int(l.dim, 0, if new.dims[3] > 1 { 4 } else { 3 });
        for (i, &d) in new.dims.iter().enumerate() {
            h.set_int(l.dim, i + 1, d as i64);
        }
        for i in 5..8 {
            h.set_int(l.dim, i, 1);
        }
        h.set_int(l.datatype, 0, new.datatype_code);
        h.set_int(l.bitpix, 0, new.bitpix);
        h.set_float(l.pixdim, 0, 1.0);
        for (i, &z) in new.voxel_size.iter().enumerate() {
            h.set_float(l.pixdim, i + 1, z);
        }
        h.set_float(l.pixdim, 4, 1.0);
        h.set_float(l.vox_offset, 0, if single_file { 352.0 } else { 0.0 });
        h.set_float(l.scl_slope, 0, new.scl_slope);
        h.set_float(l.scl_inter, 0, new.scl_inter);
        h.set_int(l.xyzt_units, 0, 2 | 8); // millimetres, seconds
        h.set_int(l.sform_code, 0, 2);
        for (r, row) in new.srow.iter().enumerate() {
            for (c, &v) in row.iter().enumerate() {
                h.set_float(l.srow, 4 * r + c, v);
            }
        }
        if let Some(g) = &new.geometry {
            h.set_int(l.qform_code, 0, g.qform_code);
            h.set_int(l.sform_code, 0, g.sform_code);
            for (i, &q) in g.quatern.iter().enumerate() {
                h.set_float(l.quatern, i, q);
            }
            for (i, &p) in g.pixdim.iter().enumerate() {
                h.set_float(l.pixdim, i, p);
            }
        }
        let magic: &[u8; 4] = if single_file { b"n+1\0" } else { b"ni1\0" };
        h.raw[l.magic.off..l.magic.off + 4].copy_from_slice(magic);
        h
    }

    fn set_int(&mut self, fld: Field, i: usize, v: i64) {
        let b = v.to_le_bytes();
        self.put(fld, i, &b[..fld.width]);
    }

    fn set_float(&mut self, fld: Field, i: usize, v: f64) {
        match fld.width {
            4 => self.put(fld, i, &(v as f32).to_le_bytes()),
            _ => self.put(fld, i, &v.to_le_bytes()),
        }
    }

    /// Stores little-endian `le` as element `i` of `fld`, in the header's byte order.
    fn put(&mut self, fld: Field, i: usize, le: &[u8]) {
        let start = fld.off + i * fld.width;
        let bytes = self.encode(le);
        self.raw[start..start + fld.width].copy_from_slice(&bytes);
    }

    /// Little-endian bytes → file byte order.
    fn encode(&self, le: &[u8]) -> Vec<u8> {
        let mut b = le.to_vec();
        if self.order == ByteOrder::Big {
            b.reverse();
        }
        b
    }

    /// The `i`-th element of an integer field, as little-endian bytes in a fixed buffer.
    fn le_bytes(&self, fld: Field, i: usize) -> [u8; 8] {
        let start = fld.off + i * fld.width;
        let mut b = [0u8; 8];
        b[..fld.width].copy_from_slice(&self.raw[start..start + fld.width]);
        if self.order == ByteOrder::Big {
            b[..fld.width].reverse();
        }
        b
    }

    fn int_at(&self, fld: Field, i: usize) -> i64 {
        let b = self.le_bytes(fld, i);
        match fld.width {
            1 => b[0] as i64,
            2 => i16::from_le_bytes([b[0], b[1]]) as i64,
            4 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64,
            _ => i64::from_le_bytes(b),
        }
    }

    fn float_at(&self, fld: Field, i: usize) -> f64 {
        let b = self.le_bytes(fld, i);
        match fld.width {
            4 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            _ => f64::from_le_bytes(b),
        }
    }

    fn text_bytes(&self, t: Text) -> &[u8] {
        &self.raw[t.off..t.off + t.len]
    }

    fn text(&self, t: Text) -> String {
        let b = self.text_bytes(t);
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        String::from_utf8_lossy(&b[..end]).into_owned()
    }
}

/// The header size (348 or 540) announced by the first four bytes (`sizeof_hdr`, which also
/// tells the byte order).
pub fn header_size(first: &[u8]) -> Result<usize, String> {
    detect(first).map(|(v, _)| layout(v).size)
}

fn detect(bytes: &[u8]) -> Result<(Version, ByteOrder), String> {
    let first = bytes
        .get(..4)
        .ok_or_else(|| format!("truncated header: file has only {} bytes", bytes.len()))?;
    let le = i32::from_le_bytes([first[0], first[1], first[2], first[3]]);
    Ok(match (le, le.swap_bytes()) {
        (348, _) => (Version::One, ByteOrder::Little),
        (_, 348) => (Version::One, ByteOrder::Big),
        (540, _) => (Version::Two, ByteOrder::Little),
        (_, 540) => (Version::Two, ByteOrder::Big),
        _ => {
            return Err(format!(
                "not a NIfTI file: sizeof_hdr is {le} (expected 348 for NIfTI-1 or 540 for \
                 NIfTI-2)"
            ))
        }
    })
}

fn layout(v: Version) -> &'static Layout {
    match v {
        Version::One => &NIFTI1,
        Version::Two => &NIFTI2,
    }
}

fn truncate_utf8(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
