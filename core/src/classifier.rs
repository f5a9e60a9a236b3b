//! The statistical classifier: hashed tokens and sparse bigrams (OSB, window 2) counted per
//! class (ham, spam, phish), scored with Robinson's f(w) and Fisher's chi-square combining, as
//! in SpamAssassin's and bogofilter's Bayes.
//!
//! # What the model learns from (and what it must not)
//!
//! Features come from the message *content* only: the subject (words, bigrams, capitals,
//! `!`/`$`, a trailing noise word), the sender's display name, domain and local-part shape,
//! the Reply-To domain, the mailer name, the MIME structure (content types, charsets,
//! attachment extensions), the relation of the Message-ID to the From domain (same, other or
//! none, never a host name), the hosts of links (a bare IP is one `<ip>` token) with the words
//! of their paths, bucketed shape counts (capitals, non-Latin letters, `!`, length, links,
//! images, hash-buster words) and the words of the visible text (text parts, or HTML rendered
//! to text; Chinese, Japanese and Korean, written without spaces, as character bigrams).
//! Received chains, Date, To/Cc/Delivered-To/X-Original-To, mailing-list headers and
//! every other header are ignored, because in a collected corpus they identify the collector
//! or the channel rather than the message. Recipient addresses, their local parts and domains
//! are masked in the text before tokenizing (a phish saying "Dear jose" is learned as
//! "Dear RCPT_LOCAL"), and links to recipient domains are skipped.
//!
//! # Model file format (little endian)
//!
//! `b"CMSTAT04"`, `u32` ham messages, `u32` spam messages, `u32` phish messages, two `f32`
//! logistic biases (spam head, phish head), `u32` n, then n records sorted by hash: `u32`
//! feature hash, `u16` ham count, `u16` spam count, `u16` phish count, two `i16` logistic
//! weights (spam head, phish head) in 1/2048 units. Features seen fewer than twice in training
//! are pruned ([`TrainOptions::min_count`]), and the logistic heads are trained on the kept
//! features only, so training sees the inputs that scoring will see.
//!
//! Feature ids split in two halves ([`STRUCTURE_BIT`]); the files written before the split,
//! `b"CMSTAT03"` and the one-head `b"CMSTAT02"` (one bias, one weight per record: a model whose
//! two heads are the same), are still read, each record under both of the ids its feature
//! can have now, so that tenant overlays stored in them keep what they learned (the id of
//! the other half is one that no feature has, but for a 1 in 2^31 collision; the structure
//! half's weights are rescaled to the new normalisation, see `UNSPLIT_STRUCTURE_WEIGHT`).
//!
//! # Two layers over the same features
//!
//! The per-class counts give the Bayes estimate (and the phish-versus-spam estimate used for
//! the category). Two logistic-regression heads trained with AdaGrad on the same features (the
//! discriminative member of the family: CRM114's OSB-Winnow, rspamd's neural module), one
//! separating spam from ham and one phish from ham, give the spam probability used for scoring
//! when present: the larger of their two logits. Spam and phish are different kinds of mail; one
//! linear head for both had to compromise between them, and on cross-validation over the
//! training corpus two heads catch about 1.5 points more spam at the same false positives. Both
//! rank far better than chi-square combining, which saturates at 0 and 1. Tenant feedback
//! corrects both layers: counts are added, and one weight correction, shared by the two heads,
//! is adjusted by train-on-error until the message is classified as the user said.
//!
//! [`BayesScore::known`] counts the message's features that the logistic layer has a weight
//! for; the engine gives a message that the model knows little about fewer points
//! ([`crate::engine::classifier_points`]), so that short personal mail is not pushed
//! towards the threshold by an undecided classifier.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::message::{Extracted, find_urls, host_is_ip, registrable_domain, url_host};

/// The class of a training message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    Ham = 0,
    Spam = 1,
    Phish = 2,
}

/// Why a model file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("not a Cleanmail model file (bad magic)")]
    BadMagic,
    #[error("model file is truncated")]
    Truncated,
}

const MAGIC: &[u8; 8] = b"CMSTAT04";
/// The two-head format whose feature ids predate [`STRUCTURE_BIT`].
const MAGIC_UNSPLIT: &[u8; 8] = b"CMSTAT03";
/// What the weight of a file written before [`STRUCTURE_BIT`] is multiplied by in its
/// structure half. Such weights were learned with every input scaled by 1/sqrt of all the
/// message's features, and a structure feature's input is now 1/sqrt of the structure
/// features' number: sqrt(structure / all), whose median over the training corpus is 0.39
/// (0.27 to 0.60 from the 10th to the 90th percentile), keeps a typical message's
/// correction as it was learned.
const UNSPLIT_STRUCTURE_WEIGHT: f64 = 0.39;
/// The earlier format: one logistic head.
const MAGIC_ONE_HEAD: &[u8; 8] = b"CMSTAT02";
/// The logistic heads: spam versus ham, phish versus ham.
const HEADS: usize = 2;
/// The bias of a head that had no examples of its class: it never wins the maximum.
const UNTRAINED_BIAS: f32 = -30.0;
/// Weights are stored as `i16` in units of 1/WEIGHT_SCALE.
const WEIGHT_SCALE: f32 = 2048.0;
/// Tokens taken from the visible text.
const MAX_TEXT_TOKENS: usize = 400;
/// Features used in the chi-square combination (the most significant ones).
const MAX_SIGNIFICANT: usize = 150;
/// Features whose f(w) is closer than this to 0.5 are ignored.
const MIN_DEVIATION: f64 = 0.1;

/// Identity hasher: keys are already hashes.
#[derive(Default)]
pub struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type FeatureMap<V> = HashMap<u32, V, BuildHasherDefault<IdentityHasher>>;

/// Per-class counts of a feature.
pub type Counts = [u32; 3];

/// A trained model: per-feature counts and per-class message totals.
#[derive(Debug, Clone, Default)]
pub struct Model {
    messages: Counts,
    /// Per-feature class counts and logistic weights, looked up once per feature.
    store: Store,
    /// The logistic heads' biases.
    bias: [f32; HEADS],
}

/// Where a model keeps its features: a hash map while it is counted and trained, a compact
/// read-only [`Table`] once read from a file, which is what scoring uses in production.
/// Counting into or training a model read from a file turns its table back into a map.
#[derive(Debug, Clone)]
enum Store {
    Map(FeatureMap<Entry>),
    Table(Table),
}

impl Default for Store {
    fn default() -> Self {
        Store::Map(FeatureMap::default())
    }
}

/// A read-only open-addressing table of a model file's records, as they are in the file
/// (weights in 1/[`WEIGHT_SCALE`] units): 16 bytes a feature, four to a cache line, found by
/// linear probing from a Fibonacci hash of the feature. Scoring looks up every feature of
/// every message in a table of some 150,000 features, several megabytes: a general hash map
/// reads its control bytes and then its bucket, two cache misses, where this reads one line.
/// At most half the slots are used, so that a lookup of a feature the model does not know (a
/// common case) usually stops at the first or second slot: a longer probe is a mispredicted
/// branch. In alternating runs this was faster than a table filled to two thirds, for 4 MB
/// more memory (8 MB for the default model).
#[derive(Debug, Clone)]
struct Table {
    slots: Box<[Slot]>,
    /// 32 minus log2 of the number of slots: a hash's top bits pick the first slot.
    shift: u32,
    len: usize,
}

#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(16))]
struct Slot {
    key: u32,
    counts: [u16; 3],
    weights: [i16; HEADS],
    used: bool,
}

impl Table {
    /// A table for `records` (feature, counts, weights); a later record of the same feature
    /// replaces an earlier one.
    fn new(records: impl ExactSizeIterator<Item = (u32, [u16; 3], [i16; HEADS])>) -> Self {
        let n = records.len();
        let slots = (2 * n).next_power_of_two().max(8);
        let mut table = Table {
            slots: vec![Slot::default(); slots].into_boxed_slice(),
            shift: 32 - slots.trailing_zeros(),
            len: 0,
        };
        for (key, counts, weights) in records {
            let i = table.position(key);
            let slot = &mut table.slots[i];
            if !slot.used {
                table.len += 1;
            }
            *slot = Slot {
                key,
                counts,
                weights,
                used: true,
            };
        }
        table
    }

    /// The slot that holds `key`, or the free slot where it would go.
    #[inline]
    fn position(&self, key: u32) -> usize {
        let mask = self.slots.len() - 1;
        let mut i = (key.wrapping_mul(0x9E37_79B1) >> self.shift) as usize;
        // Terminates: half the slots at least are free.
        while self.slots[i].used && self.slots[i].key != key {
            i = (i + 1) & mask;
        }
        i
    }

    #[inline]
    fn get(&self, key: u32) -> Option<Entry> {
        let slot = &self.slots[self.position(key)];
        slot.used.then(|| slot.entry())
    }

    fn iter(&self) -> impl Iterator<Item = (u32, Entry)> + '_ {
        self.slots
            .iter()
            .filter(|s| s.used)
            .map(|s| (s.key, s.entry()))
    }
}

impl Slot {
    /// The record as the model uses it: the same `f32` weights reading the file into a map
    /// gives.
    #[inline]
    fn entry(&self) -> Entry {
        Entry {
            counts: self.counts,
            weights: self.weights.map(|w| f32::from(w) / WEIGHT_SCALE),
        }
    }
}

/// What the model knows about one feature.
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    counts: [u16; 3],
    /// The feature's weight in each logistic head.
    weights: [f32; HEADS],
}

/// Recipient identities to mask in the text before tokenizing.
#[derive(Debug, Clone, Default)]
pub struct Masks {
    /// Lowercased full addresses.
    pub addresses: Vec<String>,
    /// Lowercased local parts (only those of at least 3 characters are masked).
    pub locals: Vec<String>,
    /// Lowercased domains.
    pub domains: Vec<String>,
}

/// The result of classifying one message.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BayesScore {
    /// Probability that the message is unwanted (spam or phish), 0 to 1, from the
    /// discriminative (logistic) layer when the model has one, else from Bayes.
    pub spam: f64,
    /// The Bayes (chi-square) estimate of the same.
    pub bayes: f64,
    /// Among unwanted mail, how phish-like it is, 0 to 1.
    pub phish: f64,
    /// Significant features used.
    pub features_used: usize,
    /// Features the logistic layer has a weight for.
    #[serde(default)]
    pub known: usize,
    /// The logistic layer's evidence: the sum of the absolute contributions of the
    /// message's features to its logit (0 when the model knows none of them).
    #[serde(default)]
    pub evidence: f64,
}

impl Model {
    /// Reads a model file (either format, see the module documentation).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        if bytes.len() < 8 {
            return Err(ModelError::Truncated);
        }
        let (heads, split) = match &bytes[..8] {
            m if m == MAGIC => (HEADS, true),
            m if m == MAGIC_UNSPLIT => (HEADS, false),
            m if m == MAGIC_ONE_HEAD => (1, false),
            _ => return Err(ModelError::BadMagic),
        };
        let header = 24 + 4 * heads;
        let record = 10 + 2 * heads;
        if bytes.len() < header {
            return Err(ModelError::Truncated);
        }
        let u32_at = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
        let messages = [u32_at(8), u32_at(12), u32_at(16)];
        // A one-head file gives both heads its bias and weights.
        let bias = std::array::from_fn(|h| f32::from_bits(u32_at(20 + 4 * h.min(heads - 1))));
        let n = u32_at(header - 4) as usize;
        if bytes.len() < header + n.saturating_mul(record) {
            return Err(ModelError::Truncated);
        }
        let records = (0..n).map(|i| {
            let at = header + i * record;
            (
                u32_at(at),
                [u16_at(at + 4), u16_at(at + 6), u16_at(at + 8)],
                std::array::from_fn(|h| u16_at(at + 10 + 2 * h.min(heads - 1)) as i16),
            )
        });
        let table = if split {
            Table::new(records)
        } else {
            let both_halves: Vec<_> = records
                .flat_map(|(id, counts, weights)| {
                    let structure_weights = weights
                        .map(|w: i16| (f64::from(w) * UNSPLIT_STRUCTURE_WEIGHT).round() as i16);
                    [
                        (id & !STRUCTURE_BIT, counts, weights),
                        (id | STRUCTURE_BIT, counts, structure_weights),
                    ]
                })
                .collect();
            Table::new(both_halves.into_iter())
        };
        Ok(Self {
            messages,
            store: Store::Table(table),
            bias,
        })
    }

    /// Writes the model file, pruning features seen fewer than `min_count` times.
    pub fn to_bytes(&self, min_count: u32) -> Vec<u8> {
        let mut entries: Vec<(u32, Entry)> = self
            .entries()
            .filter(|(_, e)| e.counts.iter().map(|&x| u32::from(x)).sum::<u32>() >= min_count)
            .collect();
        entries.sort_unstable_by_key(|(hash, _)| *hash);
        let mut out = Vec::with_capacity(24 + 4 * HEADS + entries.len() * (10 + 2 * HEADS));
        out.extend_from_slice(MAGIC);
        for count in self.messages {
            out.extend_from_slice(&count.to_le_bytes());
        }
        for bias in self.bias {
            out.extend_from_slice(&bias.to_bits().to_le_bytes());
        }
        out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        for (hash, entry) in entries {
            out.extend_from_slice(&hash.to_le_bytes());
            for c in entry.counts {
                out.extend_from_slice(&c.to_le_bytes());
            }
            for weight in entry.weights {
                let quantized = (weight * WEIGHT_SCALE).round().clamp(-32768.0, 32767.0) as i16;
                out.extend_from_slice(&quantized.to_le_bytes());
            }
        }
        out
    }

    /// Number of distinct features.
    pub fn len(&self) -> usize {
        match &self.store {
            Store::Map(map) => map.len(),
            Store::Table(table) => table.len,
        }
    }

    /// Whether the model has no features.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What the model knows about `feature`.
    #[inline]
    fn entry(&self, feature: u32) -> Option<Entry> {
        match &self.store {
            Store::Map(map) => map.get(&feature).copied(),
            Store::Table(table) => table.get(feature),
        }
    }

    /// Every feature and what the model knows about it, in no particular order.
    fn entries(&self) -> Box<dyn Iterator<Item = (u32, Entry)> + '_> {
        match &self.store {
            Store::Map(map) => Box::new(map.iter().map(|(&k, &e)| (k, e))),
            Store::Table(table) => Box::new(table.iter()),
        }
    }

    /// The features as a map that counting and training can change.
    fn entries_mut(&mut self) -> &mut FeatureMap<Entry> {
        if let Store::Table(table) = &self.store {
            self.store = Store::Map(table.iter().collect());
        }
        match &mut self.store {
            Store::Map(map) => map,
            Store::Table(_) => unreachable!("the table was just turned into a map"),
        }
    }

    /// Per-class message totals (ham, spam, phish).
    pub fn message_counts(&self) -> Counts {
        self.messages
    }

    /// Adds one message's (deduplicated) features to the counts.
    pub fn learn(&mut self, features: &[u32], class: Class) {
        self.messages[class as usize] += 1;
        let entries = self.entries_mut();
        for &feature in features {
            let entry = entries.entry(feature).or_default();
            entry.counts[class as usize] = entry.counts[class as usize].saturating_add(1);
        }
    }

    /// Scores deduplicated features, with an optional tenant overlay on top of this model.
    pub fn score(&self, features: &[u32], overlay: Option<&TenantModel>) -> BayesScore {
        let mut totals = self.messages;
        if let Some(overlay) = overlay {
            for (total, extra) in totals.iter_mut().zip(overlay.messages) {
                *total += extra;
            }
        }
        let ham_total = f64::from(totals[0].max(1));
        let bad_total = f64::from((totals[1] + totals[2]).max(1));
        let spam_total = f64::from(totals[1].max(1));
        let phish_total = f64::from(totals[2].max(1));
        let mut significant: Vec<f64> = Vec::with_capacity(features.len().min(512));
        let mut phish_significant: Vec<f64> = Vec::with_capacity(64);
        let mut z = self.bias.map(f64::from);
        let scales = InputScales::of(features);
        let (mut known, mut evidence) = (0, [0.0f64; HEADS]);
        // All the lookups first, in a loop of loads alone, so that the processor has many of
        // them in flight at once: the model is several megabytes and most lookups miss the
        // cache.
        let entries: Vec<Entry> = features
            .iter()
            .map(|&feature| self.entry(feature).unwrap_or_default())
            .collect();
        for (&feature, entry) in features.iter().zip(entries) {
            let mut weights = entry.weights;
            let mut counts = entry.counts.map(u32::from);
            if let Some(overlay) = overlay {
                if let Some(extra) = overlay.features.get(&feature) {
                    for (count, extra) in counts.iter_mut().zip(extra) {
                        *count += extra;
                    }
                }
                if let Some(delta) = overlay.weights.get(&feature) {
                    weights = weights.map(|w| w + delta);
                }
            }
            if weights.iter().any(|&w| w != 0.0) {
                known += 1;
            }
            let x = scales.of_feature(feature);
            for h in 0..HEADS {
                evidence[h] += f64::from(weights[h].abs());
                z[h] += f64::from(weights[h]) * x;
            }
            let [ham, spam, phish] = counts;
            let bad = spam + phish;
            if ham + bad == 0 {
                continue;
            }
            let f = robinson(
                f64::from(ham) / ham_total,
                f64::from(bad) / bad_total,
                ham + bad,
            );
            if (f - 0.5).abs() >= MIN_DEVIATION {
                significant.push(f);
            }
            if bad > 0 {
                let g = robinson(
                    f64::from(spam) / spam_total,
                    f64::from(phish) / phish_total,
                    bad,
                );
                if (g - 0.5).abs() >= MIN_DEVIATION {
                    phish_significant.push(g);
                }
            }
        }
        let features_used = significant.len().min(MAX_SIGNIFICANT);
        let bayes = combine(&mut significant);
        let head = usize::from(z[1] > z[0]);
        let spam = if self.bias == [0.0; HEADS] && z == [0.0; HEADS] {
            bayes
        } else {
            sigmoid(z[head])
        };
        BayesScore {
            spam,
            bayes,
            phish: combine(&mut phish_significant),
            features_used,
            known,
            evidence: evidence[head] * scales.text,
        }
    }
}

impl Model {
    /// The logistic-regression logit of a message's features (base weights plus overlay):
    /// the larger of the heads'.
    fn logit(&self, features: &[u32], overlay: Option<&TenantModel>) -> f64 {
        let scales = InputScales::of(features);
        let mut z = self.bias.map(f64::from);
        for feature in features {
            let x = scales.of_feature(*feature);
            let mut weights = self.entry(*feature).map_or([0.0; HEADS], |e| e.weights);
            if let Some(overlay) = overlay
                && let Some(delta) = overlay.weights.get(feature)
            {
                weights = weights.map(|w| w + delta);
            }
            for (z, w) in z.iter_mut().zip(weights) {
                *z += f64::from(w) * x;
            }
        }
        z[0].max(z[1])
    }

    /// Trains a model from labelled feature sets: counts every message, drops the features
    /// seen fewer than `options.min_count` times (they would be pruned from the written model
    /// anyway), then trains the logistic heads on the kept features only, so that training
    /// sees exactly the inputs that scoring will see.
    pub fn train(examples: &[(Vec<u32>, Class)], options: &TrainOptions) -> Self {
        let mut model = Model::default();
        for (features, class) in examples {
            model.learn(features, *class);
        }
        if options.kept_only {
            model.prune(options.min_count);
        }
        model.train_logistic(examples, options);
        model
    }

    /// Drops the features seen fewer than `min_count` times.
    pub fn prune(&mut self, min_count: u32) {
        self.entries_mut()
            .retain(|_, e| e.counts.iter().map(|&x| u32::from(x)).sum::<u32>() >= min_count);
    }

    /// Trains the logistic heads on labelled feature sets (the spam head on ham and spam, the
    /// phish head on ham and phish) with AdaGrad (a per-feature step size: rare tokens learn
    /// fast, common ones settle), a small L2 decay, per-message input normalisation and ham
    /// weighted up to keep false positives rare. Call after [`Model::learn`] has counted the
    /// same messages.
    pub fn train_weights(
        &mut self,
        examples: &[(Vec<u32>, Class)],
        epochs: usize,
        ham_weight: f64,
    ) {
        let options = TrainOptions {
            epochs,
            ham_weight,
            ..TrainOptions::default()
        };
        self.train_logistic(examples, &options);
    }

    /// Trains each logistic head on ham and its own class; a head without examples of its
    /// class gets a bias that never wins.
    fn train_logistic(&mut self, examples: &[(Vec<u32>, Class)], options: &TrainOptions) {
        for (head, class) in [Class::Spam, Class::Phish].into_iter().enumerate() {
            let subset: Vec<&(Vec<u32>, Class)> = examples
                .iter()
                .filter(|(_, c)| *c == Class::Ham || *c == class)
                .collect();
            if !subset.iter().any(|(_, c)| *c == class) {
                self.bias[head] = UNTRAINED_BIAS;
                for entry in self.entries_mut().values_mut() {
                    entry.weights[head] = 0.0;
                }
                continue;
            }
            self.train_head(head, &subset, options);
        }
    }

    /// One head's training: its class is positive, ham negative. With `kept_only`, features
    /// the model does not hold are left out (but still counted in the input normalisation,
    /// as when scoring).
    fn train_head(&mut self, head: usize, examples: &[&(Vec<u32>, Class)], options: &TrainOptions) {
        let (epochs, ham_weight) = (options.epochs, options.ham_weight);
        let entries = self.entries_mut();
        let known = |f: &u32| !options.kept_only || entries.contains_key(f);
        const STEP: f64 = 0.3;
        const DECAY: f64 = 1e-5;
        let mut weights: FeatureMap<f64> = FeatureMap::default();
        let mut squared_gradients: FeatureMap<f64> = FeatureMap::default();
        let mut bias = 0.0f64;
        let mut order: Vec<usize> = (0..examples.len()).collect();
        let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
        for epoch in 0..epochs {
            // Deterministic shuffle (xorshift).
            for i in (1..order.len()).rev() {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                order.swap(i, (rng % (i as u64 + 1)) as usize);
            }
            let bias_rate = 0.05 / (1.0 + epoch as f64 * 0.3);
            for &index in &order {
                let (features, class) = &examples[index];
                let scales = InputScales::of(features);
                let mut z = bias;
                for f in features.iter().filter(|f| known(f)) {
                    z += weights.get(f).copied().unwrap_or(0.0) * scales.of_feature(*f);
                }
                let target = if *class == Class::Ham { 0.0 } else { 1.0 };
                let importance = if *class == Class::Ham {
                    ham_weight
                } else {
                    1.0
                };
                let error = (target - sigmoid(z)) * importance;
                bias += error * bias_rate;
                for f in features.iter().filter(|f| known(f)) {
                    let gradient = error * scales.of_feature(*f);
                    let squared = squared_gradients.entry(*f).or_insert(1e-6);
                    *squared += gradient * gradient;
                    let w = weights.entry(*f).or_insert(0.0);
                    *w += STEP * gradient / squared.sqrt() - DECAY * *w;
                }
            }
        }
        for (feature, weight) in weights {
            if let Some(entry) = entries.get_mut(&feature) {
                entry.weights[head] = weight as f32;
            }
        }
        self.bias[head] = bias as f32;
    }
}

/// How [`Model::train`] trains.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOptions {
    /// Epochs of the logistic layer.
    pub epochs: usize,
    /// How much more a ham example weighs than a spam one.
    pub ham_weight: f64,
    /// Features seen fewer times than this are not kept.
    pub min_count: u32,
    /// Train the logistic layer only on the kept features.
    pub kept_only: bool,
    /// Also train on a short copy of every message (its first this many words; 0: none),
    /// see [`crate::Engine::short_copy`]. Used by [`crate::Engine::train_model`].
    pub short_copy_words: usize,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            epochs: crate::engine::TRAIN_EPOCHS,
            ham_weight: crate::engine::TRAIN_HAM_WEIGHT,
            min_count: 2,
            kept_only: true,
            short_copy_words: 20,
        }
    }
}

/// Features are binary, and each is scaled so that long and short messages weigh alike: a
/// word or bigram of the text by 1/sqrt(n) of all the message's features, a header or
/// structure feature by 1/sqrt of their own number, so that a long body does not drown what
/// the headers and the structure say. On cross-validation over the training corpus this
/// caught 0.7 points more spam at the same false positives than 1/sqrt(n) for every feature.
#[derive(Debug, Clone, Copy)]
struct InputScales {
    text: f64,
    structure: f64,
}

impl InputScales {
    fn of(features: &[u32]) -> Self {
        let structure = features.iter().filter(|&&f| f & STRUCTURE_BIT != 0).count();
        Self {
            text: input_scale(features.len()),
            structure: input_scale(structure),
        }
    }

    #[inline]
    fn of_feature(self, feature: u32) -> f64 {
        if feature & STRUCTURE_BIT != 0 {
            self.structure
        } else {
            self.text
        }
    }
}

fn input_scale(n: usize) -> f64 {
    1.0 / (n.max(1) as f64).sqrt()
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Robinson's f(w) with strength s = 0.45 and prior x = 0.5, from the relative frequencies of a
/// feature in good and bad mail and its number of occurrences.
fn robinson(good_ratio: f64, bad_ratio: f64, n: u32) -> f64 {
    const S: f64 = 0.45;
    const X: f64 = 0.5;
    let p = bad_ratio / (good_ratio + bad_ratio);
    let n = f64::from(n);
    ((S * X) + (n * p)) / (S + n)
}

/// Fisher's chi-square combining of the most significant f(w) values: (1 + H - S) / 2.
fn combine(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.5;
    }
    if values.len() > MAX_SIGNIFICANT {
        values.select_nth_unstable_by(MAX_SIGNIFICANT, |a, b| {
            (b - 0.5).abs().total_cmp(&(a - 0.5).abs())
        });
    }
    let values = &values[..values.len().min(MAX_SIGNIFICANT)];
    let n = values.len();
    let (mut ln_good, mut ln_bad) = (0.0, 0.0);
    for &f in values {
        let f = f.clamp(1e-6, 1.0 - 1e-6);
        ln_bad += (1.0 - f).ln();
        ln_good += f.ln();
    }
    let s = 1.0 - chi2_q(-2.0 * ln_bad, 2 * n);
    let h = 1.0 - chi2_q(-2.0 * ln_good, 2 * n);
    (1.0 + s - h) / 2.0
}

/// The survival function of the chi-square distribution with even degrees of freedom.
fn chi2_q(x2: f64, degrees: usize) -> f64 {
    let m = x2 / 2.0;
    let mut term = (-m).exp();
    let mut sum = term;
    for i in 1..degrees / 2 {
        term *= m / i as f64;
        sum += term;
    }
    sum.min(1.0)
}

/// A tenant's learned corrections, added to the shared model's counts at scoring time.
///
/// Pure data: the persistence layer stores it (for example with [`TenantModel::to_bytes`]).
#[derive(Debug, Clone, Default)]
pub struct TenantModel {
    messages: Counts,
    features: FeatureMap<Counts>,
    /// Corrections to the logistic weights.
    weights: FeatureMap<f32>,
}

impl TenantModel {
    /// An empty overlay.
    pub fn new() -> Self {
        Self::default()
    }

    /// Learns one message as `class` (a released message is ham, a "report spam" is spam):
    /// counts it, then corrects the logistic weights until `base` plus this overlay classify
    /// it on the right side with a margin (train-on-error, as in OSB-Winnow).
    pub fn learn(&mut self, base: &Model, features: &[u32], class: Class) {
        self.learn_to(base, features, class, 0.95);
    }

    /// [`TenantModel::learn`] with the probability that unwanted mail must reach (ham is
    /// learned until it is under 0.05). The engine asks for more than 0.95 when the message
    /// has few features, so that its points still reach the threshold
    /// ([`crate::Engine::learn`]).
    pub fn learn_to(&mut self, base: &Model, features: &[u32], class: Class, unwanted: f64) {
        let target = if class == Class::Ham { 0.0 } else { 1.0 };
        let scales = InputScales::of(features);
        for _ in 0..100 {
            let p = sigmoid(base.logit(features, Some(self)));
            let wrong = if class == Class::Ham {
                p > 0.05
            } else {
                p < unwanted
            };
            if !wrong {
                break;
            }
            for feature in features {
                let step = ((target - p) * scales.of_feature(*feature) * 2.0) as f32;
                *self.weights.entry(*feature).or_insert(0.0) += step;
            }
        }
        self.count(features, class);
    }

    fn count(&mut self, features: &[u32], class: Class) {
        self.messages[class as usize] += 1;
        for &feature in features {
            let counts = self.features.entry(feature).or_default();
            counts[class as usize] = counts[class as usize].saturating_add(1);
        }
    }

    /// Undoes the counts of a previous [`TenantModel::learn`] (when a user changes their
    /// mind); the logistic corrections are then made by learning the other class.
    pub fn unlearn(&mut self, features: &[u32], class: Class) {
        let slot = &mut self.messages[class as usize];
        *slot = slot.saturating_sub(1);
        for &feature in features {
            if let Some(counts) = self.features.get_mut(&feature) {
                counts[class as usize] = counts[class as usize].saturating_sub(1);
            }
        }
    }

    /// Messages learned per class (ham, spam, phish).
    pub fn message_counts(&self) -> Counts {
        self.messages
    }

    /// Distinct features the overlay holds (counts or weight corrections).
    pub fn len(&self) -> usize {
        let extra = self
            .weights
            .keys()
            .filter(|k| !self.features.contains_key(k))
            .count();
        self.features.len() + extra
    }

    /// Whether the overlay has learned nothing.
    pub fn is_empty(&self) -> bool {
        self.features.is_empty() && self.weights.is_empty()
    }

    /// Bounds the overlay to `max` features: beyond it, the features with the least
    /// evidence (seen in the fewest learned messages, then with the smallest weight
    /// correction) are forgotten, down to nine tenths of `max` so that pruning is rare.
    /// Returns how many were forgotten. Keeps a tenant's feedback from growing its model
    /// (and the memory of every process that caches it) without limit.
    pub fn prune(&mut self, max: usize) -> usize {
        let len = self.len();
        if len <= max {
            return 0;
        }
        let keep = max - max / 10;
        let mut ranked: Vec<(u32, u32, f32)> = self
            .features
            .keys()
            .chain(self.weights.keys())
            .copied()
            .collect::<std::collections::HashSet<u32>>()
            .into_iter()
            .map(|k| {
                let seen = self.features.get(&k).map_or(0, |c| c.iter().sum::<u32>());
                let correction = self.weights.get(&k).map_or(0.0, |w| w.abs());
                (k, seen, correction)
            })
            .collect();
        // Least evidence first; the feature id settles ties so pruning is deterministic.
        ranked.sort_by(|a, b| a.1.cmp(&b.1).then(a.2.total_cmp(&b.2)).then(a.0.cmp(&b.0)));
        let forget = ranked.len() - keep;
        for (k, _, _) in &ranked[..forget] {
            self.features.remove(k);
            self.weights.remove(k);
        }
        forget
    }

    /// Serialises the overlay in the model file format (counts saturate at 65535).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut entries: FeatureMap<Entry> = self
            .features
            .iter()
            .map(|(&k, c)| {
                let counts = c.map(|x| x.min(u32::from(u16::MAX)) as u16);
                (
                    k,
                    Entry {
                        counts,
                        weights: [0.0; HEADS],
                    },
                )
            })
            .collect();
        for (k, w) in &self.weights {
            entries.entry(*k).or_default().weights = [*w; HEADS];
        }
        let model = Model {
            messages: self.messages,
            store: Store::Map(entries),
            bias: [0.0; HEADS],
        };
        model.to_bytes(0)
    }

    /// Reads an overlay written by [`TenantModel::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        let model = Model::from_bytes(bytes)?;
        Ok(Self {
            messages: model.messages,
            features: model
                .entries()
                .map(|(k, e)| (k, e.counts.map(u32::from)))
                .collect(),
            weights: model
                .entries()
                .filter(|(_, e)| e.weights[0] != 0.0)
                .map(|(k, e)| (k, e.weights[0]))
                .collect(),
        })
    }
}

/// A fast 32-bit hash (FNV-1a variant with a final mix), stable across platforms and builds.
#[inline]
fn hash_bytes(seed: u32, bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811C_9DC5 ^ seed.wrapping_mul(0x0100_0193);
    for &b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h ^= h >> 15;
    h = h.wrapping_mul(0x2C1B_3C6D);
    h ^= h >> 12;
    h
}

fn prefixed(prefix: &str, value: &str) -> u32 {
    hash_bytes(hash_bytes(0, prefix.as_bytes()), value.as_bytes())
}

/// The top bit of a feature id says what kind of feature it is: clear for the words and
/// bigrams of the visible text, set for every other feature (subject, sender, headers,
/// structure, links, shape), which are normalised apart ([`InputScales`]).
pub const STRUCTURE_BIT: u32 = 1 << 31;

/// Extracts the deduplicated, sorted feature hashes of a message.
pub fn features(message: &Extracted<'_>, masks: &Masks) -> Vec<u32> {
    let mut out: Vec<u32> = Vec::with_capacity(2 * MAX_TEXT_TOKENS + 64);
    // Subject words, plus the subject's words as ordinary text.
    let subject = message.subject.to_lowercase();
    let mut subject_words = 0;
    let mut previous_subject = "";
    let subject_tokens: Vec<String> = {
        let mut v = Vec::new();
        words(&subject, masks, usize::MAX, |word| v.push(word.to_owned()));
        v
    };
    for word in &subject_tokens {
        if subject_words < 40 {
            out.push(prefixed("s:", word));
            if !previous_subject.is_empty() {
                out.push(prefixed(previous_subject, word) ^ 0x1234_5678);
            }
            previous_subject = word;
            subject_words += 1;
        }
    }
    if let Some(from) = &message.from {
        let name = from.name.to_lowercase();
        words(&name, masks, usize::MAX, |word| {
            out.push(prefixed("fn:", word))
        });
        if let Some(domain) = from.domain() {
            out.push(prefixed("fd:", registrable_domain(domain)));
        }
        if from.name.is_empty() {
            out.push(prefixed("fn:", "<none>"));
        }
    } else {
        out.push(prefixed("f:", "<none>"));
    }
    if let Some(domain) = message.reply_to.as_ref().and_then(|r| r.domain()) {
        let same = message.from.as_ref().and_then(|f| f.domain()) == Some(domain);
        out.push(prefixed(
            "rt:",
            if same {
                "same"
            } else {
                registrable_domain(domain)
            },
        ));
    }
    for token in &message.header_tokens {
        out.push(prefixed("hdr:", token));
    }
    for tag in &message.html_tags {
        out.push(prefixed("tag:", tag));
    }
    out.push(prefixed(
        "mime:",
        match (message.has_text_body, message.has_html_body) {
            (true, true) => "alt",
            (true, false) => "text",
            (false, true) => "html",
            (false, false) => "none",
        },
    ));
    for attachment in message.attachments.iter().take(10) {
        out.push(prefixed("att:", &attachment.content_type));
        if let Some(ext) = attachment
            .name
            .as_deref()
            .and_then(|n| n.rsplit_once('.'))
            .map(|(_, e)| e.to_ascii_lowercase())
        {
            out.push(prefixed("ext:", &ext));
        }
    }
    // A list footer is the channel's, not the sender's: its words and links are left out.
    let body = message.own_text();
    let footerless_urls;
    let text_urls = if body.len() < message.text.len() {
        footerless_urls = find_urls(body, 100);
        &footerless_urls
    } else {
        &message.text_urls
    };
    let links = message.links.iter().take(50).map(|l| l.href.as_str());
    for url in links.chain(text_urls.iter().take(50).map(String::as_str)) {
        url_features(url, masks, &mut out);
    }
    shape_features(message, &mut out);
    for feature in &mut out {
        *feature |= STRUCTURE_BIT;
    }
    // Visible text: unigrams and bigrams of the first MAX_TEXT_TOKENS words, lowercased a
    // chunk at a time so that a long body is not lowercased (or split) beyond them.
    let mut previous: u32 = 0;
    let mut budget = MAX_TEXT_TOKENS;
    let mut rest = body;
    while budget > 0 && !rest.is_empty() {
        let (chunk, tail) = rest.split_at(chunk_end(rest, 4096));
        rest = tail;
        budget -= words(&chunk.to_lowercase(), masks, budget, |word| {
            let h = hash_bytes(7, word.as_bytes()) & !STRUCTURE_BIT;
            out.push(h);
            if previous != 0 {
                let bigram = previous.rotate_left(5) ^ h.wrapping_mul(0x2545_F491) ^ 0x5bd1_e995;
                out.push(bigram & !STRUCTURE_BIT);
            }
            previous = h;
        });
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Features of one link: the registrable domain of its host (or the fact that the host is a
/// bare IP address), a port, the words of its path and query, user directories and scripts.
/// Links to recipient domains are skipped (they would identify the collector).
fn url_features(url: &str, masks: &Masks, out: &mut Vec<u32>) {
    let Some(host) = url_host(url) else {
        return;
    };
    if masks.domains.iter().any(|d| host.ends_with(d.as_str())) {
        return;
    }
    if host_is_ip(&host) {
        out.push(prefixed("u:", "<ip>"));
    } else {
        out.push(prefixed("u:", registrable_domain(&host)));
    }
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let (authority, path) = rest
        .find(['/', '?', '#'])
        .map_or((rest, ""), |at| rest.split_at(at));
    if authority
        .rsplit('@')
        .next()
        .is_some_and(|h| h.contains(':'))
    {
        out.push(prefixed("up:", "<port>"));
    }
    if path.contains('?') {
        out.push(prefixed("up:", "<query>"));
    }
    if path.contains('~') {
        out.push(prefixed("up:", "<tilde>"));
    }
    let path = path.to_ascii_lowercase();
    for word in path
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| (3..=20).contains(&w.len()))
        .take(6)
    {
        out.push(prefixed("up:", word));
    }
}

/// Bucketed shape features of the message (the "meta" tokens of SpamAssassin's and
/// bogofilter's tokenizers): how much of the text and subject is in capitals, non-Latin
/// letters or exclamation marks, how long the text is, how many links and images it has,
/// hash-buster words, and the shape of the sender's local part.
fn shape_features(message: &Extracted<'_>, out: &mut Vec<u32>) {
    fn bucket(prefix: &str, value: usize, out: &mut Vec<u32>) {
        let log = usize::BITS - value.leading_zeros();
        out.push(prefixed(prefix, &log.to_string()));
    }
    let text = crate::html::truncate(&message.text, 16 * 1024);
    // ASCII counts over all the bytes (the bytes of a multi-byte character are never ASCII
    // letters or `!`), branch-free into byte counters that cannot overflow in a 255-byte
    // chunk, which the compiler turns into vector code; characters are decoded only when
    // the text has others.
    let bytes = text.as_bytes();
    let (mut letters, mut upper, mut bangs) = (0usize, 0usize, 0usize);
    for chunk in bytes.chunks(255) {
        let (mut l, mut u, mut b) = (0u8, 0u8, 0u8);
        for &x in chunk {
            l += u8::from(x.is_ascii_alphabetic());
            u += u8::from(x.is_ascii_uppercase());
            b += u8::from(x == b'!');
        }
        letters += usize::from(l);
        upper += usize::from(u);
        bangs += usize::from(b);
    }
    let mut non_latin = 0;
    if !text.is_ascii() {
        for c in text.chars().filter(|c| !c.is_ascii() && c.is_alphabetic()) {
            letters += 1;
            upper += usize::from(c.is_uppercase());
            non_latin += usize::from((c as u32) > 0x24F);
        }
    }
    let percent = |part: usize| (part * 100).checked_div(letters).unwrap_or(0);
    out.push(prefixed("caps:", &(percent(upper) / 10).min(6).to_string()));
    out.push(prefixed(
        "nonlatin:",
        &(percent(non_latin) / 20).to_string(),
    ));
    bucket("bangs:", bangs, out);
    bucket("len:", letters, out);
    bucket("links:", message.links.len() + message.text_urls.len(), out);
    bucket("imgs:", message.images, out);
    // Hash busters: long runs of lowercase letters that cannot be words (five consonants in a
    // row, or too few or too many vowels), typically appended to defeat checksums.
    let gibberish = letter_runs(bytes, 12)
        .filter(|word| word.iter().all(u8::is_ascii_lowercase) && !is_wordlike(word))
        .count();
    bucket("gib:", gibberish, out);
    let subject = message.subject.trim();
    let subject_letters = subject.chars().filter(|c| c.is_alphabetic()).count();
    let subject_upper = subject.chars().filter(|c| c.is_uppercase()).count();
    if let Some(ratio) = (subject_upper * 100).checked_div(subject_letters) {
        out.push(prefixed("scaps:", &(ratio / 25).to_string()));
    }
    if subject.contains('!') {
        out.push(prefixed("s:", "<bang>"));
    }
    if subject.contains('$') || subject.contains('%') {
        out.push(prefixed("s:", "<money>"));
    }
    if let Some(last) = subject.split_whitespace().last()
        && subject.split_whitespace().count() > 2
        && last.len() >= 3
        && last.bytes().all(|b| b.is_ascii_alphanumeric())
        && !is_wordlike(last.to_ascii_lowercase().as_bytes())
    {
        out.push(prefixed("s:", "<tail-noise>"));
    }
    if let Some(local) = message
        .from
        .as_ref()
        .and_then(|f| f.address.as_deref())
        .and_then(|a| a.rsplit_once('@'))
        .map(|(local, _)| local)
    {
        let digits = local.bytes().filter(u8::is_ascii_digit).count();
        bucket("fldig:", digits, out);
        bucket("fllen:", local.len(), out);
        for word in local
            .split(|c: char| !c.is_ascii_alphabetic())
            .filter(|w| (3..=12).contains(&w.len()))
            .take(2)
        {
            out.push(prefixed("fl:", word));
        }
    }
}

/// Whether `c` belongs to a script written without spaces between words: Han, Hiragana,
/// Katakana and Hangul.
fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{3040}'..='\u{30FF}' // Hiragana, Katakana
        | '\u{3400}'..='\u{4DBF}' // Han extension A
        | '\u{4E00}'..='\u{9FFF}' // Han
        | '\u{AC00}'..='\u{D7AF}' // Hangul syllables
        | '\u{F900}'..='\u{FAFF}' // Han compatibility
        | '\u{FF66}'..='\u{FF9F}' // half-width Katakana
    )
}

/// Tokens of a word that contains CJK characters: its CJK runs as character bigrams (a lone
/// character as itself), as CJK tokenizers without a dictionary do, and its other parts as
/// ordinary words. Without this a CJK sentence, which has no spaces, would be one long token.
fn cjk_tokens(token: &str, emit: &mut impl FnMut(&str)) {
    const MAX_BIGRAMS: usize = 64;
    let mut bigrams = 0;
    let mut rest = token;
    while let Some(first) = rest.chars().next() {
        let cjk = is_cjk(first);
        let end = rest
            .char_indices()
            .find(|&(_, c)| is_cjk(c) != cjk)
            .map_or(rest.len(), |(at, _)| at);
        let (run, tail) = rest.split_at(end);
        rest = tail;
        if !cjk {
            if (2..=24).contains(&run.len()) {
                emit(run);
            }
        } else if run.chars().nth(1).is_none() {
            emit(run);
        } else {
            let mut chars = run.char_indices().peekable();
            while let Some((at, _)) = chars.next() {
                let Some(&(next, c)) = chars.peek() else {
                    break;
                };
                if bigrams == MAX_BIGRAMS {
                    return;
                }
                emit(&run[at..next + c.len_utf8()]);
                bigrams += 1;
            }
        }
    }
}

/// The maximal runs of at least `min` (> 0) ASCII letters in `bytes`, in order. A window of
/// `min` bytes that starts a run is checked from its end: the last non-letter in it is where
/// the next candidate starts, so ordinary text of short words is skipped several bytes at a
/// time.
fn letter_runs(bytes: &[u8], min: usize) -> impl Iterator<Item = &[u8]> {
    let letter = |b: &u8| b.is_ascii_alphabetic();
    // Always 0 or just after a non-letter.
    let mut start = 0;
    std::iter::from_fn(move || {
        while start + min <= bytes.len() {
            let window = &bytes[start..start + min];
            match window.iter().rposition(|b| !letter(b)) {
                Some(at) => start += at + 1,
                None => {
                    let rest = &bytes[start + min..];
                    let end =
                        start + min + rest.iter().position(|b| !letter(b)).unwrap_or(rest.len());
                    let run = &bytes[start..end];
                    start = end + 1;
                    return Some(run);
                }
            }
        }
        None
    })
}

/// Whether a lowercase word could be a word of a Latin-alphabet language: a plausible share of
/// vowels and no run of five consonants.
fn is_wordlike(word: &[u8]) -> bool {
    let vowel = |b: u8| b"aeiouy".contains(&b);
    let vowels = word.iter().filter(|&&b| vowel(b)).count();
    let mut run = 0;
    let mut longest_run = 0;
    for &b in word {
        run = if vowel(b) { 0 } else { run + 1 };
        longest_run = longest_run.max(run);
    }
    vowels * 5 >= word.len() && vowels * 5 <= word.len() * 3 && longest_run < 5
}

/// Where a chunk of at least `min` bytes of `text` can end: just after an ASCII whitespace
/// (or at the end). Words never span it, and lowercasing the chunks one by one gives the
/// lowercased whole: the only context-dependent mapping, a final capital sigma, does not look
/// past a space.
fn chunk_end(text: &str, min: usize) -> usize {
    if text.len() <= min {
        return text.len();
    }
    text.as_bytes()[min..]
        .iter()
        .position(u8::is_ascii_whitespace)
        .map_or(text.len(), |at| min + at + 1)
}

/// Splits lowercased text into word tokens, masking recipient identities and bucketing
/// long tokens; stops after `max` tokens. Returns the number of tokens emitted.
fn words(text: &str, masks: &Masks, max: usize, mut emit: impl FnMut(&str)) -> usize {
    let emitted = std::cell::Cell::new(0);
    let mut emit = |word: &str| {
        if emitted.get() < max {
            emit(word);
            emitted.set(emitted.get() + 1);
        }
    };
    let mut buffer = String::new();
    for raw in text.split(|c: char| {
        !(c.is_alphanumeric()
            || c == '$'
            || c == '!'
            || c == '\''
            || c == '-'
            || c == '@'
            || c == '.'
            || c == '_')
    }) {
        if emitted.get() >= max {
            break;
        }
        // The trimmed characters are ASCII, so trimming bytes keeps character boundaries.
        let token = {
            let trimmed = |b: &u8| matches!(b, b'.' | b'-' | b'\'' | b'_');
            let start = raw.bytes().position(|b| !trimmed(&b)).unwrap_or(raw.len());
            let end = raw
                .bytes()
                .rposition(|b| !trimmed(&b))
                .map_or(start, |at| at + 1);
            &raw[start..end]
        };
        if token.is_empty() {
            continue;
        }
        if token.contains('@') {
            if masks.addresses.iter().any(|a| a == token) {
                emit("RCPT_ADDR");
            } else if let Some((_, domain)) = token.rsplit_once('@') {
                if masks.domains.iter().any(|d| d == domain) {
                    emit("RCPT_DOMAIN_ADDR");
                } else {
                    buffer.clear();
                    buffer.push_str("email@");
                    buffer.push_str(registrable_domain(domain));
                    emit(&buffer);
                }
            }
            continue;
        }
        if token.len() < 2 {
            continue;
        }
        if masks.locals.iter().any(|l| l == token) {
            emit("RCPT_LOCAL");
            continue;
        }
        if masks.domains.iter().any(|d| d == token) {
            emit("RCPT_DOMAIN");
            continue;
        }
        if !token.is_ascii() && token.chars().any(is_cjk) {
            cjk_tokens(token, &mut emit);
            continue;
        }
        if token.len() > 24 {
            buffer.clear();
            buffer.push_str("long:");
            buffer.push_str(&(token.len() / 8).to_string());
            emit(&buffer);
            continue;
        }
        emit(token);
    }
    emitted.get()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_shapes_become_generic_tokens() {
        let message = |url: &str, text: &str| Extracted {
            subject: "Act now".to_owned(),
            text: text.to_owned(),
            text_urls: vec![url.to_owned()],
            ..Default::default()
        };
        let masks = Masks::default();
        // Any bare IP host is the same feature; the path words are features of their own.
        let a = features(
            &message("http://200.38.128.154/remove.cgi", "hello"),
            &masks,
        );
        let b = features(&message("http://10.1.2.3/remove.cgi", "hello"), &masks);
        let c = features(&message("http://10.1.2.3/other", "hello"), &masks);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.contains(&(prefixed("u:", "<ip>") | STRUCTURE_BIT)));
        assert!(a.contains(&(prefixed("up:", "remove") | STRUCTURE_BIT)));
        // Hash busters and shouting are counted, whatever the random letters are.
        let busted = features(&message("", "buy now nywguempturgwthionjpsqdw"), &masks);
        assert!(busted.contains(&(prefixed("gib:", "1") | STRUCTURE_BIT)));
        let shouting = features(&message("", "BUY CHEAP PILLS NOW"), &masks);
        assert!(shouting.contains(&(prefixed("caps:", "6") | STRUCTURE_BIT)));
        let calm = features(&message("", "see you at the meeting tomorrow"), &masks);
        assert!(calm.contains(&(prefixed("gib:", "0") | STRUCTURE_BIT)));
        assert!(calm.contains(&(prefixed("caps:", "0") | STRUCTURE_BIT)));
    }

    #[test]
    fn chi_square_combining_is_bimodal() {
        let mut spammy = vec![0.99; 20];
        let mut hammy = vec![0.01; 20];
        assert!(combine(&mut spammy) > 0.99);
        assert!(combine(&mut hammy) < 0.01);
        assert_eq!(combine(&mut []), 0.5);
    }

    #[test]
    fn model_round_trips_and_overlay_learns() {
        let mut model = Model::default();
        model.learn(&[1, 2, 3], Class::Ham);
        model.learn(&[1, 2, 3], Class::Ham);
        model.learn(&[4, 5, 6], Class::Spam);
        model.learn(&[4, 5, 6], Class::Spam);
        let back = Model::from_bytes(&model.to_bytes(1)).unwrap();
        assert_eq!(back.message_counts(), [2, 2, 0]);
        assert!(back.score(&[4, 5, 6], None).spam > 0.9);
        assert!(back.score(&[1, 2, 3], None).spam < 0.1);
        let mut overlay = TenantModel::new();
        for _ in 0..20 {
            overlay.learn(&back, &[4, 5, 6], Class::Ham);
        }
        assert!(back.score(&[4, 5, 6], Some(&overlay)).spam < 0.5);
        let restored = TenantModel::from_bytes(&overlay.to_bytes()).unwrap();
        assert_eq!(restored.message_counts(), [20, 0, 0]);

        let mut trained = Model::default();
        let examples = vec![
            (vec![1, 2, 3], Class::Ham),
            (vec![4, 5, 6], Class::Spam),
            (vec![1, 2, 7], Class::Ham),
            (vec![4, 5, 8], Class::Phish),
        ];
        for (f, c) in &examples {
            trained.learn(f, *c);
        }
        trained.train_weights(&examples, 20, 1.0);
        let trained = Model::from_bytes(&trained.to_bytes(1)).unwrap();
        assert!(trained.score(&[4, 5, 9], None).spam > 0.5);
        assert!(trained.score(&[1, 2, 9], None).spam < 0.5);
        let mut overlay = TenantModel::new();
        overlay.learn(&trained, &[4, 5, 9], Class::Ham);
        assert!(trained.score(&[4, 5, 9], Some(&overlay)).spam < 0.1);
        assert!(matches!(
            Model::from_bytes(b"garbage"),
            Err(ModelError::Truncated)
        ));
    }

    #[test]
    fn a_model_read_from_a_file_scores_as_the_model_it_was_written_from() {
        // Enough features, with keys that share their top bits, for long probe runs.
        let mut rng: u32 = 0x1234_5678;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            rng
        };
        let mut examples = Vec::new();
        for i in 0..300u32 {
            let mut features: Vec<u32> = (0..40).map(|_| next() & 0xF00F_FFFF).collect();
            features.extend([0, u32::MAX, i % 7]);
            features.sort_unstable();
            features.dedup();
            let class = [Class::Ham, Class::Spam, Class::Phish][i as usize % 3];
            examples.push((features, class));
        }
        let trained = Model::train(&examples, &TrainOptions::default());
        let bytes = trained.to_bytes(1);
        let table = Model::from_bytes(&bytes).unwrap();
        assert!(matches!(table.store, Store::Table(_)));
        // The same file read into a map: what scoring used before the table.
        let mut map = table.clone();
        map.entries_mut();
        assert!(matches!(map.store, Store::Map(_)));
        assert_eq!(table.len(), map.len());
        assert_eq!(table.len(), trained.len());
        assert_eq!(map.to_bytes(1), bytes);
        assert_eq!(table.to_bytes(1), bytes);
        for (features, _) in &examples {
            let absent: Vec<u32> = features.iter().map(|f| f ^ 0x0800_0000).collect();
            for probe in [features, &absent] {
                assert_eq!(table.score(probe, None), map.score(probe, None));
                for &f in probe {
                    assert_eq!(
                        table.entry(f).map(|e| e.counts),
                        map.entry(f).map(|e| e.counts)
                    );
                    assert_eq!(
                        table.entry(f).map(|e| e.weights),
                        map.entry(f).map(|e| e.weights)
                    );
                }
            }
        }
        // Counting into a model read from a file turns it back into a map that keeps it all.
        let mut learned = table.clone();
        learned.learn(&[42, 43], Class::Spam);
        assert!(matches!(learned.store, Store::Map(_)));
        assert_eq!(learned.len(), table.len() + 2);
        assert_eq!(learned.message_counts()[1], table.message_counts()[1] + 1);
        assert_eq!(
            learned.entry(u32::MAX).map(|e| (e.counts, e.weights)),
            table.entry(u32::MAX).map(|e| (e.counts, e.weights))
        );
    }

    #[test]
    fn letter_runs_are_the_long_words_of_a_split() {
        let mut rng: u32 = 0x9E37_79B9;
        let alphabet = b"abcXYZ .,-1\xc3\xa9";
        for _ in 0..5000 {
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            let len = (rng % 80) as usize;
            let text: Vec<u8> = (0..len)
                .map(|i| {
                    let r = rng.rotate_left(i as u32 * 7) ^ (i as u32).wrapping_mul(0x2545_F491);
                    // Mostly letters, so that long runs are common.
                    if r.is_multiple_of(5) {
                        alphabet[(r / 5) as usize % alphabet.len()]
                    } else {
                        b'a' + (r % 3) as u8
                    }
                })
                .collect();
            for min in [1, 3, 12] {
                let expected: Vec<&[u8]> = text
                    .split(|b| !b.is_ascii_alphabetic())
                    .filter(|w| w.len() >= min)
                    .collect();
                assert_eq!(
                    letter_runs(&text, min).collect::<Vec<_>>(),
                    expected,
                    "{text:?} {min}"
                );
            }
        }
    }

    #[test]
    fn cjk_text_becomes_character_bigrams() {
        let mut tokens = Vec::new();
        words(
            "今日は会議 abc東京x",
            &Masks::default(),
            usize::MAX,
            |w| tokens.push(w.to_owned()),
        );
        assert_eq!(tokens, ["今日", "日は", "は会", "会議", "abc", "東京"]);
        let mut tokens = Vec::new();
        words("한 word", &Masks::default(), usize::MAX, |w| {
            tokens.push(w.to_owned())
        });
        assert_eq!(tokens, ["한", "word"]);
    }

    #[test]
    fn one_head_files_still_read_and_score_as_before() {
        // A CMSTAT02 file: bias 0.5, feature 7 weighing 1.0 (2048/2048), seen once as spam.
        let mut old = b"CMSTAT02".to_vec();
        for word in [0u32, 1, 0] {
            old.extend_from_slice(&word.to_le_bytes());
        }
        old.extend_from_slice(&0.5f32.to_bits().to_le_bytes());
        old.extend_from_slice(&1u32.to_le_bytes());
        old.extend_from_slice(&7u32.to_le_bytes());
        for count in [0u16, 1, 0] {
            old.extend_from_slice(&count.to_le_bytes());
        }
        old.extend_from_slice(&2048i16.to_le_bytes());
        let model = Model::from_bytes(&old).unwrap();
        let expected = sigmoid(0.5 + 1.0);
        assert!((model.score(&[7], None).spam - expected).abs() < 1e-6);
        // Its ids predate the split: the feature is read in both halves, its weight scaled
        // in the structure half, where inputs are larger now.
        let weight = (2048.0 * UNSPLIT_STRUCTURE_WEIGHT).round() / 2048.0;
        let structure = sigmoid(0.5 + weight);
        assert!((model.score(&[7 | STRUCTURE_BIT], None).spam - structure).abs() < 1e-6);
        assert_eq!(model.len(), 2);
        // Written again in the current format, it scores the same.
        let again = Model::from_bytes(&model.to_bytes(0)).unwrap();
        assert_eq!(&model.to_bytes(0)[..8], MAGIC);
        assert!((again.score(&[7], None).spam - expected).abs() < 1e-6);
        assert!(matches!(
            Model::from_bytes(&old[..old.len() - 1]),
            Err(ModelError::Truncated)
        ));
    }

    #[test]
    fn overlays_stored_before_the_split_keep_what_they_learned() {
        // A tenant overlay as the previous format stored it: two heads, feature 7 seen twice
        // as spam with a weight correction of 1.0 (shared by the heads).
        let mut old = MAGIC_UNSPLIT.to_vec();
        for word in [0u32, 2, 0] {
            old.extend_from_slice(&word.to_le_bytes());
        }
        for bias in [0.0f32, 0.0] {
            old.extend_from_slice(&bias.to_bits().to_le_bytes());
        }
        old.extend_from_slice(&1u32.to_le_bytes());
        old.extend_from_slice(&7u32.to_le_bytes());
        for count in [0u16, 2, 0] {
            old.extend_from_slice(&count.to_le_bytes());
        }
        for weight in [2048i16, 2048] {
            old.extend_from_slice(&weight.to_le_bytes());
        }
        let overlay = TenantModel::from_bytes(&old).unwrap();
        assert_eq!(overlay.message_counts(), [0, 2, 0]);
        assert_eq!(overlay.len(), 2, "the feature in both halves");
        let structure = (2048.0 * UNSPLIT_STRUCTURE_WEIGHT).round() as f32 / 2048.0;
        for (feature, weight) in [(7, 1.0), (7 | STRUCTURE_BIT, structure)] {
            assert_eq!(overlay.features.get(&feature), Some(&[0, 2, 0]));
            assert_eq!(overlay.weights.get(&feature), Some(&weight));
        }
        // Stored again, it is in the current format and reads back the same.
        let again = overlay.to_bytes();
        assert_eq!(&again[..8], MAGIC);
        let back = TenantModel::from_bytes(&again).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back.weights.get(&(7 | STRUCTURE_BIT)), Some(&structure));
    }

    #[test]
    fn a_long_body_does_not_dilute_the_header_features() {
        // One header feature weighing 1.0 (and a text word weighing nothing).
        let header = 5 | STRUCTURE_BIT;
        let mut file = MAGIC.to_vec();
        for word in [0u32, 1, 0] {
            file.extend_from_slice(&word.to_le_bytes());
        }
        for bias in [0.0f32, UNTRAINED_BIAS] {
            file.extend_from_slice(&bias.to_bits().to_le_bytes());
        }
        file.extend_from_slice(&1u32.to_le_bytes());
        file.extend_from_slice(&header.to_le_bytes());
        for count in [0u16, 1, 0] {
            file.extend_from_slice(&count.to_le_bytes());
        }
        for weight in [2048i16, 0] {
            file.extend_from_slice(&weight.to_le_bytes());
        }
        let model = Model::from_bytes(&file).unwrap();
        let logit = |text_words: u32| {
            let mut features: Vec<u32> = (0..text_words).collect();
            features.push(header);
            let p = model.score(&features, None).spam;
            (p / (1.0 - p)).ln()
        };
        // The header feature is alone in its half: its input is 1 whatever the body's length.
        assert!((logit(0) - 1.0).abs() < 1e-6);
        assert!((logit(400) - 1.0).abs() < 1e-6);
        // A second header feature (unknown to the model) halves it... to 1/sqrt(2).
        let p = model.score(&[header, 6 | STRUCTURE_BIT], None).spam;
        assert!(((p / (1.0 - p)).ln() - 1.0 / 2f64.sqrt()).abs() < 1e-6);
    }

    #[test]
    fn features_of_the_text_and_of_the_rest_fall_in_their_halves() {
        let message = |url: &str| Extracted {
            text: "hello there".to_owned(),
            text_urls: vec![url.to_owned()],
            ..Default::default()
        };
        let masks = Masks::default();
        let plain = features(&message(""), &masks);
        let with_link = features(&message("http://example.com/a"), &masks);
        let text: Vec<u32> = plain
            .iter()
            .copied()
            .filter(|f| f & STRUCTURE_BIT == 0)
            .collect();
        // Two words and their bigram, in the text half; the link only adds structure.
        assert_eq!(text.len(), 3);
        assert!(with_link.len() > plain.len());
        assert!(
            with_link
                .iter()
                .filter(|f| !plain.contains(f))
                .all(|f| f & STRUCTURE_BIT != 0)
        );
    }

    #[test]
    fn each_head_learns_its_own_class() {
        // Spam and phish share nothing here: each head learns its own class.
        let mut examples = Vec::new();
        for i in 0..30u32 {
            examples.push((vec![1, 2, 100 + i], Class::Ham));
            examples.push((vec![10, 11, 200 + i], Class::Spam));
            examples.push((vec![20, 21, 300 + i], Class::Phish));
        }
        let options = TrainOptions {
            min_count: 1,
            ..TrainOptions::default()
        };
        let model = Model::from_bytes(&Model::train(&examples, &options).to_bytes(1)).unwrap();
        assert!(model.score(&[10, 11, 999], None).spam > 0.9);
        assert!(model.score(&[20, 21, 999], None).spam > 0.9);
        assert!(model.score(&[1, 2, 999], None).spam < 0.1);
        // Without phish examples the phish head never wins.
        let no_phish: Vec<_> = examples
            .iter()
            .filter(|(_, c)| *c != Class::Phish)
            .cloned()
            .collect();
        let model = Model::train(&no_phish, &options);
        assert_eq!(model.bias[1], UNTRAINED_BIAS);
        assert!(model.score(&[1, 2, 999], None).spam < 0.1);
    }

    #[test]
    fn a_pruned_overlay_keeps_its_best_evidence() {
        let base = Model::default();
        let mut overlay = TenantModel::new();
        // Feature 1 is in every learned message; 100..1100 once each.
        for i in 0..1000u32 {
            overlay.learn(&base, &[1, 100 + i], Class::Spam);
        }
        assert_eq!(overlay.len(), 1001);
        assert_eq!(overlay.prune(2000), 0, "under the cap nothing goes");
        let forgotten = overlay.prune(500);
        assert_eq!(forgotten, 1001 - 450, "down to nine tenths of the cap");
        assert_eq!(overlay.len(), 450);
        let restored = TenantModel::from_bytes(&overlay.to_bytes()).unwrap();
        assert_eq!(restored.len(), 450);
        assert_eq!(restored.message_counts(), [0, 1000, 0]);
        assert!(
            restored.features.contains_key(&1),
            "the common feature stays"
        );
        assert!(base.score(&[1, 5000], Some(&restored)).spam > 0.5);
    }
}
