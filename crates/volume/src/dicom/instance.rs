//! One DICOM file as the loader sees it: identity, pixel format and per-frame geometry, read
//! from the classic attributes or from the enhanced multi-frame functional groups.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, InMemDicomObject, OpenFileOptions};

use crate::{Error, Result, Scaling};

/// Geometry and intensity scaling of one 2-D frame, in the file's LPS patient coordinates.
#[derive(Debug, Clone)]
pub(crate) struct FrameInfo {
    pub position: Option<[f64; 3]>,
    /// Row direction (towards increasing column index) then column direction.
    pub orientation: Option<[f64; 6]>,
    /// PixelSpacing as stored: spacing between rows, then between columns.
    pub spacing: Option<[f64; 2]>,
    /// SliceThickness, used as the slice step only when a series has a single slice.
    pub thickness: Option<f64>,
    /// Orders frames that share a position into volumes: echo, temporal position, acquisition
    /// and instance number (or frame index), 0 where absent.
    pub time_key: [f64; 4],
    pub scaling: Scaling,
}

/// What the loader needs from one DICOM file.
#[derive(Debug, Clone)]
pub(crate) struct Instance {
    pub path: PathBuf,
    pub sop_instance_uid: String,
    pub series_uid: String,
    pub series_description: String,
    pub series_number: Option<i64>,
    pub modality: String,
    pub transfer_syntax: String,
    pub rows: u32,
    pub columns: u32,
    pub samples_per_pixel: u16,
    pub bits_allocated: u16,
    pub bits_stored: u16,
    /// 0 = unsigned, 1 = two's complement.
    pub pixel_representation: u16,
    pub has_pixel_data: bool,
    pub has_float_pixel_data: bool,
    /// Siemens mosaic: many slices tiled into one frame.
    pub mosaic: bool,
    /// Several frames but no per-frame functional groups to say where each one is.
    pub frames_without_positions: bool,
    pub frames: Vec<FrameInfo>,
}

/// What a path turned out to be when looked at as DICOM.
pub(crate) enum Probe {
    /// Not a DICOM file at all (no `DICM` magic after the 128-byte preamble).
    NotDicom,
    /// A DICOM object that is not an image (DICOMDIR, structured report, presentation state...).
    NotImage,
    Image(Box<Instance>, Box<DefaultDicomObject>),
}

/// True when the file has the DICOM Part 10 magic. Files without it (README, raw datasets without
/// preamble) are not treated as DICOM.
pub(crate) fn has_dicom_magic(path: &Path) -> Result<bool> {
    let mut f = fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut head = [0u8; 132];
    let mut read = 0;
    while read < head.len() {
        match f.read(&mut head[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    Ok(read == head.len() && &head[128..132] == b"DICM")
}

/// Opens and parses a file; with `header_only`, stops before the pixel data (enough to list
/// series, not to load them). Parse failures of a file that has the DICOM magic are errors: a
/// damaged slice must not silently disappear from a series.
pub(crate) fn probe(path: &Path, header_only: bool) -> Result<Probe> {
    if !has_dicom_magic(path)? {
        return Ok(Probe::NotDicom);
    }
    let options = OpenFileOptions::new();
    let options = if header_only {
        options.read_until(tags::PIXEL_DATA)
    } else {
        options
    };
    let obj = options
        .open_file(path)
        .map_err(|e| Error::invalid(path, format!("cannot parse DICOM file: {e}")))?;
    let is_image = obj.get(tags::ROWS).is_some() || obj.get(tags::PIXEL_DATA).is_some();
    if !is_image {
        return Ok(Probe::NotImage);
    }
    let inst = Instance::from_object(path, &obj)?;
    Ok(Probe::Image(Box::new(inst), Box::new(obj)))
}

fn str_of(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    let s = obj.get(tag)?.to_str().ok()?;
    let s = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    Some(s.to_string())
}

fn floats_of(obj: &InMemDicomObject, tag: Tag) -> Option<Vec<f64>> {
    obj.get(tag)?.to_multi_float64().ok()
}

fn fixed<const N: usize>(v: Option<Vec<f64>>) -> Option<[f64; N]> {
    let v = v?;
    if v.len() != N || v.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let mut out = [0.0; N];
    out.copy_from_slice(&v);
    Some(out)
}

fn u16_of(obj: &InMemDicomObject, tag: Tag) -> Option<u16> {
    obj.get(tag)?.to_int::<u16>().ok()
}

fn first_item(obj: &InMemDicomObject, tag: Tag) -> Option<&InMemDicomObject> {
    obj.get(tag)?.items()?.first()
}

/// Time key of one frame of an enhanced file: effective echo time, temporal position index,
/// then the frame's order in the file.
fn enhanced_time_key(item: &InMemDicomObject, index: u32) -> [f64; 4] {
    let echo = first_item(item, tags::MR_ECHO_SEQUENCE)
        .and_then(|e| floats_of(e, tags::EFFECTIVE_ECHO_TIME)?.first().copied());
    let temporal = first_item(item, tags::FRAME_CONTENT_SEQUENCE).and_then(|c| {
        floats_of(c, tags::TEMPORAL_POSITION_INDEX)?
            .first()
            .copied()
    });
    let finite = |v: Option<f64>| v.filter(|x| x.is_finite()).unwrap_or(0.0);
    [finite(echo), finite(temporal), 0.0, index as f64]
}

/// Frame attributes found in one functional-groups item (per-frame or shared).
#[derive(Default, Clone, Copy)]
struct GroupValues {
    position: Option<[f64; 3]>,
    orientation: Option<[f64; 6]>,
    spacing: Option<[f64; 2]>,
    thickness: Option<f64>,
    slope: Option<f64>,
    intercept: Option<f64>,
}

impl GroupValues {
    fn from_item(item: Option<&InMemDicomObject>) -> Self {
        let Some(item) = item else {
            return GroupValues::default();
        };
        let pos = first_item(item, tags::PLANE_POSITION_SEQUENCE);
        let ori = first_item(item, tags::PLANE_ORIENTATION_SEQUENCE);
        let meas = first_item(item, tags::PIXEL_MEASURES_SEQUENCE);
        let pvt = first_item(item, tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE);
        GroupValues {
            position: pos.and_then(|p| fixed(floats_of(p, tags::IMAGE_POSITION_PATIENT))),
            orientation: ori.and_then(|o| fixed(floats_of(o, tags::IMAGE_ORIENTATION_PATIENT))),
            spacing: meas.and_then(|m| fixed(floats_of(m, tags::PIXEL_SPACING))),
            thickness: meas.and_then(|m| floats_of(m, tags::SLICE_THICKNESS)?.first().copied()),
            slope: pvt.and_then(|p| floats_of(p, tags::RESCALE_SLOPE)?.first().copied()),
            intercept: pvt.and_then(|p| floats_of(p, tags::RESCALE_INTERCEPT)?.first().copied()),
        }
    }
    /// Per-frame values win; shared ones fill the gaps.
    fn or(self, shared: GroupValues) -> GroupValues {
        GroupValues {
            position: self.position.or(shared.position),
            orientation: self.orientation.or(shared.orientation),
            spacing: self.spacing.or(shared.spacing),
            thickness: self.thickness.or(shared.thickness),
            slope: self.slope.or(shared.slope),
            intercept: self.intercept.or(shared.intercept),
        }
    }
}

impl Instance {
    fn from_object(path: &Path, obj: &DefaultDicomObject) -> Result<Instance> {
        let need = |tag: Tag, name: &str| -> Result<u16> {
            u16_of(obj, tag)
                .ok_or_else(|| Error::invalid(path, format!("missing or invalid {name}")))
        };
        let rows = need(tags::ROWS, "Rows")? as u32;
        let columns = need(tags::COLUMNS, "Columns")? as u32;
        let bits_allocated = need(tags::BITS_ALLOCATED, "BitsAllocated")?;
        let pixel_representation = u16_of(obj, tags::PIXEL_REPRESENTATION).unwrap_or(0);
        let samples_per_pixel = u16_of(obj, tags::SAMPLES_PER_PIXEL).unwrap_or(1);
        let number_of_frames = match obj.get(tags::NUMBER_OF_FRAMES) {
            Some(e) => e
                .to_int::<u32>()
                .map_err(|_| Error::invalid(path, "NumberOfFrames is not a number"))?,
            None => 1,
        };
        if rows == 0 || columns == 0 || number_of_frames == 0 {
            return Err(Error::invalid(
                path,
                format!("empty image: {rows} rows, {columns} columns, {number_of_frames} frames"),
            ));
        }

        let classic_scaling = GroupValues {
            slope: floats_of(obj, tags::RESCALE_SLOPE).and_then(|v| v.first().copied()),
            intercept: floats_of(obj, tags::RESCALE_INTERCEPT).and_then(|v| v.first().copied()),
            ..GroupValues::default()
        };
        let classic = GroupValues {
            position: fixed(floats_of(obj, tags::IMAGE_POSITION_PATIENT)),
            orientation: fixed(floats_of(obj, tags::IMAGE_ORIENTATION_PATIENT)),
            spacing: fixed(floats_of(obj, tags::PIXEL_SPACING)),
            thickness: floats_of(obj, tags::SLICE_THICKNESS).and_then(|v| v.first().copied()),
            ..classic_scaling
        };

        let per_frame = obj
            .get(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)
            .and_then(|e| e.items());
        let shared =
            GroupValues::from_item(first_item(obj, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE));
        let number = |tag| {
            obj.get(tag)
                .and_then(|e| e.to_float64().ok())
                .filter(|v| v.is_finite())
                .unwrap_or(0.0)
        };
        let classic_time_key = [
            number(tags::ECHO_NUMBERS),
            number(tags::TEMPORAL_POSITION_IDENTIFIER),
            number(tags::ACQUISITION_NUMBER),
            number(tags::INSTANCE_NUMBER),
        ];
        let mut frames = Vec::with_capacity(number_of_frames as usize);
        for index in 0..number_of_frames {
            let v = match per_frame {
                Some(items) => {
                    let item = items.get(index as usize).ok_or_else(|| {
                        Error::invalid(
                            path,
                            format!(
                                "PerFrameFunctionalGroupsSequence has {} items for {number_of_frames} frames",
                                items.len()
                            ),
                        )
                    })?;
                    GroupValues::from_item(Some(item)).or(shared).or(classic)
                }
                None => classic,
            };
            let slope = v.slope.unwrap_or(1.0);
            let intercept = v.intercept.unwrap_or(0.0);
            if !slope.is_finite() || slope == 0.0 || !intercept.is_finite() {
                return Err(Error::invalid(
                    path,
                    format!("invalid RescaleSlope/Intercept {slope}/{intercept}"),
                ));
            }
            frames.push(FrameInfo {
                position: v.position,
                orientation: v.orientation,
                spacing: v.spacing,
                thickness: v.thickness,
                time_key: match per_frame.and_then(|items| items.get(index as usize)) {
                    Some(item) => enhanced_time_key(item, index),
                    None => classic_time_key,
                },
                scaling: Scaling { slope, intercept },
            });
        }

        let image_type = obj
            .get(tags::IMAGE_TYPE)
            .and_then(|e| e.to_multi_str().ok());
        let mosaic = image_type.is_some_and(|t| t.iter().any(|v| v.trim() == "MOSAIC"));
        let series_uid = str_of(obj, tags::SERIES_INSTANCE_UID)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::invalid(path, "missing SeriesInstanceUID"))?;
        Ok(Instance {
            path: path.to_path_buf(),
            sop_instance_uid: str_of(obj, tags::SOP_INSTANCE_UID).unwrap_or_default(),
            series_uid,
            series_description: str_of(obj, tags::SERIES_DESCRIPTION).unwrap_or_default(),
            series_number: obj
                .get(tags::SERIES_NUMBER)
                .and_then(|e| e.to_int::<i64>().ok()),
            modality: str_of(obj, tags::MODALITY).unwrap_or_default(),
            transfer_syntax: obj
                .meta()
                .transfer_syntax()
                .trim_end_matches(['\0', ' '])
                .to_string(),
            rows,
            columns,
            samples_per_pixel,
            bits_allocated,
            bits_stored: u16_of(obj, tags::BITS_STORED).unwrap_or(bits_allocated),
            pixel_representation,
            has_pixel_data: obj.get(tags::PIXEL_DATA).is_some(),
            has_float_pixel_data: obj.get(tags::FLOAT_PIXEL_DATA).is_some()
                || obj.get(tags::DOUBLE_FLOAT_PIXEL_DATA).is_some(),
            mosaic,
            frames_without_positions: number_of_frames > 1 && per_frame.is_none(),
            frames,
        })
    }

    /// Refuses what the loader cannot place correctly. Checked only for the series being loaded,
    /// so that such a file does not stop [`super::scan`] or the loading of another series.
    pub(crate) fn check_supported(&self) -> Result<()> {
        if !self.has_pixel_data {
            return Err(Error::invalid(
                &self.path,
                "no pixel data (PixelData element missing)",
            ));
        }
        // A mosaic's position attributes describe the tile grid, not the slices: reading it as
        // one image would place every voxel wrongly.
        if self.mosaic {
            return Err(Error::unsupported(
                &self.path,
                "Siemens mosaic image (slices tiled in one frame) is not supported",
            ));
        }
        if self.frames_without_positions {
            return Err(Error::unsupported(
                &self.path,
                format!(
                    "{} frames without PerFrameFunctionalGroupsSequence: frame positions are unknown",
                    self.frames.len()
                ),
            ));
        }
        crate::dicom::pixels::datatype_of(self).map(|_| ())
    }
}
