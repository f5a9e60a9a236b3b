//! Evaluation metrics over labelled messages (pure functions; the CLI walks directories).
//!
//! A message is *caught* when its category is spam, phishing or virus at the standard policy.
//! Spam and phish are the positive classes, ham the negative one.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::classifier::Class;
use crate::policy::Category;

/// Counts of predicted categories per true class.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Confusion {
    /// `counts[class][category]`.
    pub counts: BTreeMap<&'static str, BTreeMap<&'static str, u64>>,
}

fn class_name(class: Class) -> &'static str {
    match class {
        Class::Ham => "ham",
        Class::Spam => "spam",
        Class::Phish => "phish",
    }
}

impl Confusion {
    /// Records one message.
    pub fn add(&mut self, truth: Class, predicted: Category) {
        *self
            .counts
            .entry(class_name(truth))
            .or_default()
            .entry(predicted.as_str())
            .or_default() += 1;
    }

    fn total(&self, class: &str) -> u64 {
        self.counts.get(class).map_or(0, |c| c.values().sum())
    }

    fn caught(&self, class: &str) -> u64 {
        self.counts.get(class).map_or(0, |c| {
            c.iter()
                .filter(|(category, _)| matches!(**category, "spam" | "phishing" | "virus"))
                .map(|(_, n)| n)
                .sum()
        })
    }

    /// Computes the metrics.
    pub fn metrics(&self, seconds: f64) -> Metrics {
        let ham = self.total("ham");
        let spam = self.total("spam");
        let phish = self.total("phish");
        let false_positives = self.caught("ham");
        let true_positives = self.caught("spam") + self.caught("phish");
        let positives = spam + phish;
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let precision = ratio(true_positives, true_positives + false_positives);
        let recall = ratio(true_positives, positives);
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        let messages = ham + positives;
        Metrics {
            messages,
            ham,
            spam,
            phish,
            false_positives,
            true_positives,
            ham_false_positive_rate: ratio(false_positives, ham),
            spam_recall: ratio(self.caught("spam"), spam),
            phish_recall: ratio(self.caught("phish"), phish),
            precision,
            recall,
            f1,
            seconds,
            messages_per_second: if seconds > 0.0 {
                messages as f64 / seconds
            } else {
                0.0
            },
            cpu_seconds: None,
            messages_per_cpu_second: None,
            confusion: self.counts.clone(),
        }
    }
}

/// Evaluation figures (fractions are 0 to 1).
#[derive(Debug, Clone, Serialize)]
pub struct Metrics {
    pub messages: u64,
    pub ham: u64,
    pub spam: u64,
    pub phish: u64,
    pub false_positives: u64,
    pub true_positives: u64,
    pub ham_false_positive_rate: f64,
    pub spam_recall: f64,
    pub phish_recall: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub seconds: f64,
    pub messages_per_second: f64,
    /// CPU time of the classifying thread, when the caller measured it (on a shared machine
    /// wall-clock throughput understates the engine).
    pub cpu_seconds: Option<f64>,
    pub messages_per_cpu_second: Option<f64>,
    /// Predicted categories per true class.
    pub confusion: BTreeMap<&'static str, BTreeMap<&'static str, u64>>,
}

impl Metrics {
    /// Adds the CPU time the classification took.
    pub fn with_cpu_seconds(mut self, cpu_seconds: f64) -> Self {
        self.cpu_seconds = Some(cpu_seconds);
        if cpu_seconds > 0.0 {
            self.messages_per_cpu_second = Some(self.messages as f64 / cpu_seconds);
        }
        self
    }

    /// A plain-text table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "class   total  caught  clean  newsletter  spam  phishing  virus  recall/fpr\n",
        );
        for class in ["ham", "spam", "phish"] {
            let counts = self.confusion.get(class).cloned().unwrap_or_default();
            let get = |k: &str| counts.get(k).copied().unwrap_or(0);
            let total: u64 = counts.values().sum();
            let caught = get("spam") + get("phishing") + get("virus");
            let rate = if total == 0 {
                0.0
            } else {
                caught as f64 / total as f64
            };
            out.push_str(&format!(
                "{class:<6} {total:>6} {caught:>7} {:>6} {:>11} {:>5} {:>9} {:>6}  {:>9.2}%{}\n",
                get("clean"),
                get("newsletter"),
                get("spam"),
                get("phishing"),
                get("virus"),
                rate * 100.0,
                if class == "ham" {
                    " (FPR)"
                } else {
                    " (recall)"
                },
            ));
        }
        out.push_str(&format!(
            "\nprecision {:.4}  recall {:.4}  F1 {:.4}  ham FPR {:.4}%  spam recall {:.2}%  phish recall {:.2}%\n",
            self.precision,
            self.recall,
            self.f1,
            self.ham_false_positive_rate * 100.0,
            self.spam_recall * 100.0,
            self.phish_recall * 100.0
        ));
        out.push_str(&format!(
            "{} messages in {:.3} s: {:.0} messages/s",
            self.messages, self.seconds, self.messages_per_second
        ));
        if let (Some(cpu), Some(rate)) = (self.cpu_seconds, self.messages_per_cpu_second) {
            out.push_str(&format!(
                " ({cpu:.3} s of CPU on one core: {rate:.0} messages/CPU-s)"
            ));
        }
        out.push('\n');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_from_counts() {
        let mut confusion = Confusion::default();
        for _ in 0..98 {
            confusion.add(Class::Ham, Category::Clean);
        }
        confusion.add(Class::Ham, Category::Newsletter);
        confusion.add(Class::Ham, Category::Spam);
        for _ in 0..9 {
            confusion.add(Class::Spam, Category::Spam);
        }
        confusion.add(Class::Spam, Category::Clean);
        for _ in 0..10 {
            confusion.add(Class::Phish, Category::Phishing);
        }
        let m = confusion.metrics(2.0);
        assert_eq!(m.messages, 120);
        assert!((m.ham_false_positive_rate - 0.01).abs() < 1e-9);
        assert!((m.spam_recall - 0.9).abs() < 1e-9);
        assert!((m.phish_recall - 1.0).abs() < 1e-9);
        assert!((m.precision - 19.0 / 20.0).abs() < 1e-9);
        assert!((m.recall - 19.0 / 20.0).abs() < 1e-9);
        assert!((m.f1 - 0.95).abs() < 1e-9);
        assert!((m.messages_per_second - 60.0).abs() < 1e-9);
        assert!(m.table().contains("phish"));
    }
}
