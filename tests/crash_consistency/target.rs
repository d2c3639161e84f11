//! The file under test, a channel file or an image file, opened through the public API.

use std::path::{Path, PathBuf};

use compressed_image::{AnyChannel, Backend, Channel, Durability, Error, Image, Result};
use serde_json::{Value, json};

use crate::workload::{Data, Kind, Observed, State, Step, Workload};

/// A channel file or an image file, opened through the public API.
pub enum Target {
    Chan(Channel<f32>),
    Img(Image<f32>),
}

impl Target {
    pub fn create(w: &Workload, path: &Path) -> Result<Target> {
        Ok(match w.kind {
            Kind::Channel => Target::Chan(Channel::create_full(
                path,
                w.width,
                w.height,
                f32::from_bits(w.fill),
                w.settings(),
            )?),
            Kind::Image => Target::Img(Image::create(path, w.width, w.height)?),
        })
    }

    pub fn open(kind: Kind, path: &Path, writable: bool) -> Result<Target> {
        Ok(match (kind, writable) {
            (Kind::Channel, false) => Target::Chan(Channel::open_read_only(path)?),
            (Kind::Channel, true) => Target::Chan(Channel::open(path)?),
            (Kind::Image, false) => Target::Img(Image::open_read_only(path)?),
            (Kind::Image, true) => Target::Img(Image::open(path)?),
        })
    }

    pub fn open_with<F>(kind: Kind, path: &Path, wrap: F) -> Result<Target>
    where
        F: Fn(Box<dyn Backend>) -> Box<dyn Backend> + Send + Sync + 'static,
    {
        Ok(match kind {
            Kind::Channel => Target::Chan(Channel::try_from_any(AnyChannel::open_with_backend(
                path, wrap,
            )?)?),
            Kind::Image => Target::Img(Image::open_with_backend(path, wrap)?),
        })
    }

    pub fn channel(&self, ch: usize) -> Result<Channel<f32>> {
        match self {
            Target::Chan(c) => {
                assert_eq!(ch, 0, "a channel file has one channel");
                Ok(c.clone())
            }
            Target::Img(img) => img.channel(ch),
        }
    }

    pub fn image(&self) -> &Image<f32> {
        match self {
            Target::Img(img) => img,
            Target::Chan(_) => panic!("an image step on a channel workload"),
        }
    }

    pub fn sync(&self) -> Result {
        match self {
            Target::Chan(c) => c.sync(),
            Target::Img(img) => img.sync(),
        }
    }

    pub fn compact(&self) -> Result {
        match self {
            Target::Chan(c) => c.compact().map(drop),
            Target::Img(img) => img.compact().map(drop),
        }
    }

    pub fn generation(&self) -> Result<u64> {
        Ok(match self {
            Target::Chan(c) => c.stats()?.generation,
            Target::Img(img) => img.stats()?.generation,
        })
    }

    pub fn verify(&self) -> std::result::Result<(), String> {
        let v = match self {
            Target::Chan(c) => c.verify(),
            Target::Img(img) => img.verify(),
        }
        .map_err(|e| format!("verify() failed: {e}"))?;
        if v.is_ok() {
            Ok(())
        } else {
            Err(format!("verify() found problems: {:?}", v.problems))
        }
    }

    pub fn apply(&self, w: &Workload, step: &Step) -> Result {
        match step {
            Step::Set { ch, chunk, data } => self
                .channel(*ch)?
                .set_chunk(*chunk, &w.chunk(*data, *chunk)),
            Step::Batch { ch, writes, commit } => {
                let c = self.channel(*ch)?;
                let mut b = c.batch()?;
                for (chunk, data) in writes {
                    b.set_chunk(*chunk, &w.chunk(*data, *chunk))?;
                }
                if *commit {
                    b.commit()
                } else {
                    drop(b); // discarded: its blobs stay in the tail, unreferenced
                    Ok(())
                }
            }
            Step::Sync => self.sync(),
            Step::Immediate(on) => {
                let d = if *on {
                    Durability::Immediate
                } else {
                    Durability::OnSync
                };
                match self {
                    Target::Chan(c) => c.set_durability(d),
                    Target::Img(img) => img.set_durability(d),
                }
            }
            Step::Compact => self.compact(),
            Step::AddChannel { seed, name } => self
                .image()
                .add_channel(&w.channel(*seed), name.as_deref(), w.settings())
                .map(drop),
            Step::AddLazy { bits, name } => self
                .image()
                .add_lazy_channel(f32::from_bits(*bits), name.as_deref(), w.settings())
                .map(drop),
            Step::Remove(i) => self.image().remove_channel(*i),
            Step::Names(names) => {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                self.image().set_channel_names(&names)
            }
            Step::Meta(v) => self.image().set_metadata(v.clone()),
        }
    }

    /// Every chunk of every channel, read one by one, plus names and metadata.
    pub fn observe(&self) -> Result<Observed> {
        fn read(c: &AnyChannel) -> Result<Vec<u8>> {
            let mut out = Vec::new();
            for i in 0..c.num_chunks() {
                let mut buf = vec![0u8; c.chunk_size_at(i)?];
                c.get_chunk_bytes(i, &mut buf)?;
                out.extend_from_slice(&buf);
            }
            Ok(out)
        }
        Ok(match self {
            Target::Chan(c) => Observed {
                generation: self.generation()?,
                channels: vec![read(c)?],
                names: Vec::new(),
                meta: Value::Null,
            },
            Target::Img(img) => Observed {
                generation: self.generation()?,
                channels: (0..img.num_channels())
                    .map(|i| read(&*img.channel(i)?))
                    .collect::<Result<_>>()?,
                names: img.channel_names(),
                meta: img.metadata(),
            },
        })
    }

    /// After an I/O error every write is `Error::Poisoned`.
    pub fn expect_poisoned(&self, w: &Workload) -> std::result::Result<(), String> {
        let mut results: Vec<(&str, Result)> = Vec::new();
        match self {
            Target::Chan(c) => {
                results.push(("set_chunk", c.set_chunk(0, &w.chunk(Data::Noise(999), 0))));
                results.push(("batch", c.batch().map(drop)));
            }
            Target::Img(img) => {
                results.push(("set_metadata", img.set_metadata(json!(0))));
                results.push((
                    "add_lazy_channel",
                    img.add_lazy_channel(1.0, None, w.settings()).map(drop),
                ));
            }
        }
        results.push(("sync", self.sync()));
        results.push(("compact", self.compact()));
        for (what, r) in results {
            if !matches!(r, Err(Error::Poisoned)) {
                return Err(format!(
                    "{what} after the I/O error returned {r:?}, expected Error::Poisoned"
                ));
            }
        }
        Ok(())
    }
}

/// Commits made on a file after recovering it, to show it accepts new ones.
pub fn recovery_steps(w: &Workload, s: &State, seed: u64) -> Vec<Step> {
    let set = Step::Set {
        ch: 0,
        chunk: seed as usize % w.n_chunks(),
        data: Data::Noise(seed),
    };
    match w.kind {
        Kind::Channel => vec![set],
        Kind::Image if s.channels.is_empty() => vec![Step::Meta(json!({"recovered": seed}))],
        Kind::Image => vec![Step::Meta(json!({"recovered": seed})), set],
    }
}

/// Make the base file of `w` normally (created, base steps, synced, closed) and the model
/// states: `states[0]` is the base, `states[i + 1]` the state after step `i`.
pub fn prepare(w: &Workload, dir: &Path) -> (PathBuf, Vec<State>) {
    let base = dir.join(format!("{}-base.cimg", w.name));
    let t = Target::create(w, &base).expect("create the base file");
    let mut s = State::initial(w);
    for step in &w.base {
        t.apply(w, step)
            .unwrap_or_else(|e| panic!("{}: base step {step:?}: {e}", w.name));
        s = s.after(w, step);
    }
    t.sync().expect("sync the base file");
    drop(t);
    let mut states = vec![s];
    for step in &w.steps {
        let next = states.last().expect("a state").after(w, step);
        states.push(next);
    }
    (base, states)
}
