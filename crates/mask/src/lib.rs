//! # defacer-mask
//!
//! TO BE IMPLEMENTED: head mask, template fit, skull surface, face/ear/brain masks.
