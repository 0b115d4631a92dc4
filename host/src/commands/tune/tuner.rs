//! What the tuning page asks of the host: the controls (from the installed
//! image stages' manifests), renders of the post chain over the stack (a
//! crop with a margin, or the whole image, cached), and "Save".

use std::cell::RefCell;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use jupiter_plugin_api::{Image, Manifest, ParamKind};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::config::{PipelineSpec, StageChoice};
use crate::io::write::{write_image, write_text_atomic, OutputMeta};
use crate::pipeline::{download, html, ResolvedStage, Session, StageRunner};
use crate::registry::is_image_stage;

/// Pixels around a crop that are processed with it and then cut away, so
/// that filters near the crop's edge see the same neighbourhood as on the
/// whole image (the wavelets' and the PSF's reach).
const CROP_MARGIN: u32 = 48;

/// One stage of the chain as the page sends it.
#[derive(Debug, Clone, Deserialize)]
pub struct ChainEntry {
    pub plugin: String,
    #[serde(default)]
    pub params: Map<String, Value>,
}

/// A rectangle of the stack, in its pixels.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Crop {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

/// A preview request: the chain, the part of the image, and whether the
/// chain runs on the whole image (else on the crop and its margin).
#[derive(Debug, Deserialize)]
pub struct RenderRequest {
    pub chain: Vec<ChainEntry>,
    pub crop: Option<Crop>,
    #[serde(default)]
    pub full: bool,
    /// `before`: the stack itself (display levels), no chain.
    #[serde(default)]
    pub before: bool,
}

/// A save request: the chain and the image format (tif, png, fits).
#[derive(Debug, Deserialize)]
pub struct SaveRequest {
    pub chain: Vec<ChainEntry>,
    pub format: String,
}

/// The stack in memory and what the page may do with it.
pub struct Tuner<'s> {
    session: &'s Session<'s>,
    stack: Image,
    /// Display levels of the stack (for "before").
    levels: (f32, f32),
    spec: PipelineSpec,
    from_capture: bool,
    save_as: PathBuf,
    device: String,
    /// What a saved image records (the capture's or the stack's date,
    /// observer, frames; the post chain is added to its history on Save).
    meta: OutputMeta,
    /// The last whole-image render, by its chain (as JSON text).
    cache: RefCell<Option<(String, Image)>>,
}

impl<'s> Tuner<'s> {
    pub fn new(
        session: &'s Session<'s>,
        stack: Image,
        spec: PipelineSpec,
        from_capture: bool,
        save_as: PathBuf,
        device: String,
    ) -> Tuner<'s> {
        Tuner {
            levels: html::auto_levels(&stack),
            session,
            stack,
            spec,
            from_capture,
            save_as,
            device,
            meta: OutputMeta::default(),
            cache: RefCell::new(None),
        }
    }

    /// Saves record `meta` (with the post chain appended to its history).
    pub fn with_meta(mut self, meta: OutputMeta) -> Tuner<'s> {
        self.meta = meta;
        self
    }

    /// What the page builds itself from: the image, the device, where Save
    /// writes, and every image stage with its parameters (the pipeline's
    /// post chain first, enabled, in its order).
    pub fn state(&self) -> Value {
        let reg = self.session.registry;
        let mut names: Vec<&str> = self.spec.post.iter().map(|p| p.plugin.as_str()).collect();
        names.retain(|n| reg.stages.contains_key(*n));
        let chain_len = names.len();
        for (name, s) in &reg.stages {
            if is_image_stage(s.manifest.kind) && !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
        let stages: Vec<Value> = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let values = self
                    .spec
                    .post
                    .iter()
                    .find(|p| p.plugin == *name)
                    .map(|p| p.params.clone())
                    .unwrap_or_default();
                stage_json(&reg.stages[*name].manifest, i < chain_len, values)
            })
            .collect();
        let save = self
            .save_as
            .file_name()
            .map(|n| n.to_string_lossy().to_string());
        json!({
            "width": self.stack.width,
            "height": self.stack.height,
            "channels": self.stack.channels,
            "device": self.device,
            "save_as": save,
            "from_capture": self.from_capture,
            "stages": stages,
        })
    }

    /// Whether Ctrl-C was pressed.
    pub fn cancelled(&self) -> bool {
        self.session.backend.is_cancelled()
    }

    /// The stack, small, at display levels (the page's overview to pick the crop).
    pub fn overview_png(&self) -> Result<Vec<u8>> {
        html::png_bytes(&html::thumbnail(&self.stack, 320), Some(self.levels))
            .map_err(anyhow::Error::msg)
    }

    /// A render: the PNG of the crop (or the whole image), the stages'
    /// messages and the seconds it took.
    pub fn render(&self, req: &RenderRequest) -> Result<(Vec<u8>, Vec<String>, f64)> {
        let t = Instant::now();
        let crop = clamp_crop(req.crop, &self.stack);
        if req.before {
            let png = html::png_bytes(&cut(&self.stack, crop), Some(self.levels));
            return Ok((
                png.map_err(anyhow::Error::msg)?,
                Vec::new(),
                t.elapsed().as_secs_f64(),
            ));
        }
        let (img, messages) = if req.full {
            let (img, messages) = self.full(&req.chain)?;
            (cut(&img, crop), messages)
        } else {
            let outer = grow(crop, CROP_MARGIN, &self.stack);
            let part = self.apply(&req.chain, cut(&self.stack, outer))?;
            let inner = Crop {
                x: crop.x - outer.x,
                y: crop.y - outer.y,
                ..crop
            };
            (cut(&part, inner), self.session.backend.take_messages())
        };
        let png = html::png_bytes(&img, None).map_err(anyhow::Error::msg)?;
        Ok((png, messages, t.elapsed().as_secs_f64()))
    }

    /// Writes the whole image through the chain and the pipeline file that
    /// reproduces it; returns both paths.
    pub fn save(&self, req: &SaveRequest) -> Result<(PathBuf, PathBuf)> {
        if !matches!(req.format.as_str(), "tif" | "png" | "fits") {
            bail!("unknown format '{}' (tif, png or fits)", req.format);
        }
        let (img, _) = self.full(&req.chain)?;
        let image_path = self.save_as.with_extension(&req.format);
        let toml_path = self.save_as.with_extension("toml");
        let mut spec = self.spec.clone();
        spec.post = choices(&req.chain);
        spec.default_post = false;
        let mut meta = self.meta.clone();
        meta.history
            .extend(spec.post.iter().enumerate().map(|(k, c)| {
                format!(
                    "post {}: {} {}",
                    k + 1,
                    c.plugin,
                    serde_json::Value::Object(c.params.clone())
                )
            }));
        write_image(&img, &image_path, (false, true), &meta)?;
        write_text_atomic(&toml_path, &spec.to_toml(self.from_capture)?)?;
        Ok((image_path, toml_path))
    }

    /// The chain over the whole stack, from the cache when it is the last one.
    fn full(&self, chain: &[ChainEntry]) -> Result<(Image, Vec<String>)> {
        let key = serde_json::to_string(&choices(chain))?;
        if let Some((k, img)) = &*self.cache.borrow() {
            if *k == key {
                return Ok((img.clone(), Vec::new()));
            }
        }
        let img = self.apply(chain, self.stack.clone())?;
        let messages = self.session.backend.take_messages();
        *self.cache.borrow_mut() = Some((key, img.clone()));
        Ok((img, messages))
    }

    /// Runs the chain through the plugins (validated against their
    /// manifests first) and brings the result to host memory.
    fn apply(&self, chain: &[ChainEntry], image: Image) -> Result<Image> {
        let reg = self.session.registry;
        let stages = choices(chain)
            .iter()
            .map(|c| ResolvedStage::image_stage(reg, c))
            .collect::<Result<Vec<_>>>()?;
        let backend = self.session.backend;
        backend.take_messages();
        let out = StageRunner::new(backend).post(&stages, image)?;
        let out = download(backend, out)?;
        if out.data.iter().any(|v| !v.is_finite()) {
            bail!("the chain produced a non-finite value");
        }
        Ok(out)
    }
}

fn choices(chain: &[ChainEntry]) -> Vec<StageChoice> {
    chain
        .iter()
        .map(|e| StageChoice {
            plugin: e.plugin.clone(),
            params: e.params.clone(),
        })
        .collect()
}

/// One stage for the page: its manifest and the values set in the pipeline.
fn stage_json(m: &Manifest, enabled: bool, values: Map<String, Value>) -> Value {
    let params: Vec<Value> = m
        .params
        .iter()
        .map(|p| {
            json!({
                "name": p.name.as_str(),
                "kind": kind_code(p.kind),
                "default": serde_json::from_str::<Value>(p.default.as_str()).unwrap_or(Value::Null),
                "min": p.min.into_option(),
                "max": p.max.into_option(),
                "choices": p.choices.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
                "doc": p.doc.as_str(),
            })
        })
        .collect();
    json!({
        "name": m.name.as_str(),
        "kind": m.kind.as_str(),
        "version": m.version.as_str(),
        "summary": m.summary.as_str(),
        "gpu": m.gpu,
        "enabled": enabled,
        "params": params,
        "values": values,
    })
}

fn kind_code(k: ParamKind) -> &'static str {
    match k {
        ParamKind::Float => "float",
        ParamKind::Int => "int",
        ParamKind::Bool => "bool",
        ParamKind::Text => "text",
        ParamKind::Choice => "choice",
        ParamKind::FloatList => "floatlist",
    }
}

/// The crop inside the image (the whole image when none is given).
fn clamp_crop(crop: Option<Crop>, img: &Image) -> Crop {
    let Some(c) = crop else {
        return Crop {
            x: 0,
            y: 0,
            w: img.width,
            h: img.height,
        };
    };
    let w = c.w.clamp(1, img.width);
    let h = c.h.clamp(1, img.height);
    Crop {
        x: c.x.min(img.width - w),
        y: c.y.min(img.height - h),
        w,
        h,
    }
}

/// The crop grown by `m` on every side, inside the image.
fn grow(c: Crop, m: u32, img: &Image) -> Crop {
    let (x, y) = (c.x.saturating_sub(m), c.y.saturating_sub(m));
    Crop {
        x,
        y,
        w: (c.x + c.w + m).min(img.width) - x,
        h: (c.y + c.h + m).min(img.height) - y,
    }
}

/// The pixels of `c` (inside `img`) as an image of their own.
fn cut(img: &Image, c: Crop) -> Image {
    let ch = img.channels as usize;
    let (w, x0) = (img.width as usize, c.x as usize);
    let mut data = Vec::with_capacity(c.w as usize * c.h as usize * ch);
    for y in c.y as usize..(c.y + c.h) as usize {
        let row = (y * w + x0) * ch;
        data.extend_from_slice(&img.data[row..row + c.w as usize * ch]);
    }
    Image::from_vec(c.w, c.h, img.channels, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crops_stay_inside_and_cut_the_right_pixels() {
        let img = Image::from_vec(10, 8, 1, (0..80).map(|v| v as f32).collect());
        let c = clamp_crop(
            Some(Crop {
                x: 9,
                y: 7,
                w: 4,
                h: 3,
            }),
            &img,
        );
        assert_eq!((c.x, c.y, c.w, c.h), (6, 5, 4, 3));
        let part = cut(&img, c);
        assert_eq!(part.data[0], 56.0);
        assert_eq!(part.data[11], 79.0);
        let g = grow(
            Crop {
                x: 2,
                y: 2,
                w: 3,
                h: 3,
            },
            4,
            &img,
        );
        assert_eq!((g.x, g.y, g.w, g.h), (0, 0, 9, 8));
        let whole = clamp_crop(None, &img);
        assert_eq!(cut(&img, whole).data, img.data);
    }
}
