//! The words of the link pages in each language a user can choose (the languages of the
//! report emails): the page follows the user's language once the link is verified, and the
//! browser's `Accept-Language` before that (a link that is invalid or expired).

use serde::Serialize;

/// Every string of the link pages, in one language. `{address}` and `{sender}` are filled in.
#[derive(Debug, Serialize)]
pub struct Words {
    pub lang: &'static str,
    pub invalid_title: &'static str,
    pub invalid_text: &'static str,
    pub expired_title: &'static str,
    pub expired_text: &'static str,
    pub used_title: &'static str,
    pub used_text: &'static str,
    pub gone_text: &'static str,
    pub failed_text: &'static str,
    pub nothing_done: &'static str,
    pub release: &'static str,
    pub delete: &'static str,
    pub allow_sender: &'static str,
    pub open: &'static str,
    pub confirm_release: &'static str,
    pub confirm_delete: &'static str,
    pub confirm_allow: &'static str,
    pub ask_release: &'static str,
    pub ask_delete: &'static str,
    pub ask_allow: &'static str,
    pub nothing_until_confirm: &'static str,
    pub quarantine_of: &'static str,
    pub webmail_of: &'static str,
    pub released: &'static str,
    pub requested: &'static str,
    pub deleted: &'static str,
    pub allowed: &'static str,
    pub done: &'static str,
    pub from: &'static str,
    pub subject: &'static str,
    pub received: &'static str,
    pub category: &'static str,
    pub nothing_here: &'static str,
    pub clean: &'static str,
    pub newsletter: &'static str,
    pub spam: &'static str,
    pub phishing: &'static str,
    pub virus: &'static str,
}

impl Words {
    /// The name of a verdict category (`clean`, `newsletter`, …) in this language.
    pub fn category_name(&self, category: &str) -> String {
        match category {
            "clean" => self.clean,
            "newsletter" => self.newsletter,
            "spam" => self.spam,
            "phishing" => self.phishing,
            "virus" => self.virus,
            other => other,
        }
        .to_owned()
    }
}

impl Default for &'static Words {
    fn default() -> Self {
        &EN
    }
}

/// The words for a user's language (`en`, `fr`, `de`, `it`; English otherwise).
pub fn words(language: &str) -> &'static Words {
    ALL.into_iter()
        .find(|w| w.lang.eq_ignore_ascii_case(language.trim()))
        .unwrap_or(&EN)
}

/// The first language of an `Accept-Language` header that the pages speak, by preference
/// (`q` weights honoured); English when none.
pub fn negotiate(accept_language: Option<&str>) -> &'static Words {
    let Some(header) = accept_language else {
        return &EN;
    };
    let mut best: Option<(f32, &'static Words)> = None;
    for range in header.split(',') {
        let mut parts = range.split(';');
        let tag = parts.next().unwrap_or("").trim();
        let quality = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let primary = tag.split('-').next().unwrap_or("");
        let Some(words) = ALL
            .into_iter()
            .find(|w| w.lang.eq_ignore_ascii_case(primary))
        else {
            continue;
        };
        if quality > 0.0 && best.is_none_or(|(q, _)| quality > q) {
            best = Some((quality, words));
        }
    }
    best.map_or(&EN, |(_, words)| words)
}

static ALL: [&Words; 4] = [&EN, &FR, &DE, &IT];

static EN: Words = Words {
    lang: "en",
    invalid_title: "This link is not valid",
    invalid_text: "The link is incomplete, was changed, or is not for this page. Use the link from your latest report.",
    expired_title: "This link has expired",
    expired_text: "Links in quarantine reports work for a limited time. Use the links of your latest report, or sign in to your quarantine.",
    used_title: "This link was already used",
    used_text: "Each action link works once. Open your quarantine to see the message's current state.",
    gone_text: "This message is no longer in your quarantine (released, deleted or expired).",
    failed_text: "The action could not be carried out. Please try again later.",
    nothing_done: "Nothing was done",
    release: "Release",
    delete: "Delete",
    allow_sender: "Allow sender",
    open: "Open",
    confirm_release: "Confirm: release",
    confirm_delete: "Confirm: delete",
    confirm_allow: "Confirm: allow sender",
    ask_release: "Release this message to your mailbox?",
    ask_delete: "Delete this message?",
    ask_allow: "Allow this sender from now on?",
    nothing_until_confirm: "Nothing happens until you confirm.",
    quarantine_of: "Quarantine of {address}",
    webmail_of: "Backup webmail of {address}",
    released: "The message was released and is on its way to your mailbox.",
    requested: "Your administrator was asked to release this message.",
    deleted: "The message was deleted.",
    allowed: "{sender} is now an allowed sender.",
    done: "Done",
    from: "From",
    subject: "Subject",
    received: "Received",
    category: "Category",
    nothing_here: "Nothing here.",
    clean: "clean",
    newsletter: "newsletter",
    spam: "spam",
    phishing: "phishing",
    virus: "virus",
};

static FR: Words = Words {
    lang: "fr",
    invalid_title: "Ce lien n'est pas valable",
    invalid_text: "Le lien est incomplet, a été modifié ou n'est pas destiné à cette page. Utilisez le lien de votre dernier rapport.",
    expired_title: "Ce lien a expiré",
    expired_text: "Les liens des rapports de quarantaine sont valables pour une durée limitée. Utilisez les liens de votre dernier rapport ou connectez-vous à votre quarantaine.",
    used_title: "Ce lien a déjà été utilisé",
    used_text: "Chaque lien d'action ne fonctionne qu'une fois. Ouvrez votre quarantaine pour voir l'état actuel du message.",
    gone_text: "Ce message n'est plus dans votre quarantaine (libéré, supprimé ou expiré).",
    failed_text: "L'action n'a pas pu être effectuée. Veuillez réessayer plus tard.",
    nothing_done: "Rien n'a été fait",
    release: "Libérer",
    delete: "Supprimer",
    allow_sender: "Autoriser l'expéditeur",
    open: "Ouvrir",
    confirm_release: "Confirmer : libérer",
    confirm_delete: "Confirmer : supprimer",
    confirm_allow: "Confirmer : autoriser l'expéditeur",
    ask_release: "Libérer ce message vers votre boîte aux lettres ?",
    ask_delete: "Supprimer ce message ?",
    ask_allow: "Autoriser cet expéditeur désormais ?",
    nothing_until_confirm: "Rien ne se passe tant que vous n'avez pas confirmé.",
    quarantine_of: "Quarantaine de {address}",
    webmail_of: "Webmail de secours de {address}",
    released: "Le message a été libéré et est en route vers votre boîte aux lettres.",
    requested: "Votre administrateur a été invité à libérer ce message.",
    deleted: "Le message a été supprimé.",
    allowed: "{sender} est désormais un expéditeur autorisé.",
    done: "C'est fait",
    from: "De",
    subject: "Objet",
    received: "Reçu",
    category: "Catégorie",
    nothing_here: "Rien ici.",
    clean: "propre",
    newsletter: "newsletter",
    spam: "spam",
    phishing: "hameçonnage",
    virus: "virus",
};

static DE: Words = Words {
    lang: "de",
    invalid_title: "Dieser Link ist ungültig",
    invalid_text: "Der Link ist unvollständig, wurde verändert oder gehört nicht zu dieser Seite. Verwenden Sie den Link aus Ihrem neuesten Bericht.",
    expired_title: "Dieser Link ist abgelaufen",
    expired_text: "Links in Quarantäneberichten gelten nur für begrenzte Zeit. Verwenden Sie die Links Ihres neuesten Berichts oder melden Sie sich bei Ihrer Quarantäne an.",
    used_title: "Dieser Link wurde bereits verwendet",
    used_text: "Jeder Aktionslink funktioniert nur einmal. Öffnen Sie Ihre Quarantäne, um den aktuellen Zustand der Nachricht zu sehen.",
    gone_text: "Diese Nachricht ist nicht mehr in Ihrer Quarantäne (freigegeben, gelöscht oder abgelaufen).",
    failed_text: "Die Aktion konnte nicht ausgeführt werden. Bitte versuchen Sie es später erneut.",
    nothing_done: "Es wurde nichts ausgeführt",
    release: "Freigeben",
    delete: "Löschen",
    allow_sender: "Absender erlauben",
    open: "Öffnen",
    confirm_release: "Bestätigen: freigeben",
    confirm_delete: "Bestätigen: löschen",
    confirm_allow: "Bestätigen: Absender erlauben",
    ask_release: "Diese Nachricht in Ihr Postfach freigeben?",
    ask_delete: "Diese Nachricht löschen?",
    ask_allow: "Diesen Absender ab jetzt erlauben?",
    nothing_until_confirm: "Es geschieht nichts, bis Sie bestätigen.",
    quarantine_of: "Quarantäne von {address}",
    webmail_of: "Backup-Webmail von {address}",
    released: "Die Nachricht wurde freigegeben und ist unterwegs in Ihr Postfach.",
    requested: "Ihr Administrator wurde gebeten, diese Nachricht freizugeben.",
    deleted: "Die Nachricht wurde gelöscht.",
    allowed: "{sender} ist jetzt ein erlaubter Absender.",
    done: "Erledigt",
    from: "Von",
    subject: "Betreff",
    received: "Empfangen",
    category: "Kategorie",
    nothing_here: "Hier ist nichts.",
    clean: "sauber",
    newsletter: "Newsletter",
    spam: "Spam",
    phishing: "Phishing",
    virus: "Virus",
};

static IT: Words = Words {
    lang: "it",
    invalid_title: "Questo link non è valido",
    invalid_text: "Il link è incompleto, è stato modificato o non è destinato a questa pagina. Usi il link del suo ultimo rapporto.",
    expired_title: "Questo link è scaduto",
    expired_text: "I link dei rapporti di quarantena valgono per un tempo limitato. Usi i link del suo ultimo rapporto o acceda alla sua quarantena.",
    used_title: "Questo link è già stato usato",
    used_text: "Ogni link d'azione funziona una sola volta. Apra la sua quarantena per vedere lo stato attuale del messaggio.",
    gone_text: "Questo messaggio non è più nella sua quarantena (rilasciato, eliminato o scaduto).",
    failed_text: "Non è stato possibile eseguire l'azione. Riprovi più tardi.",
    nothing_done: "Non è stato fatto nulla",
    release: "Rilascia",
    delete: "Elimina",
    allow_sender: "Autorizza mittente",
    open: "Apri",
    confirm_release: "Conferma: rilascia",
    confirm_delete: "Conferma: elimina",
    confirm_allow: "Conferma: autorizza mittente",
    ask_release: "Rilasciare questo messaggio nella sua casella di posta?",
    ask_delete: "Eliminare questo messaggio?",
    ask_allow: "Autorizzare questo mittente d'ora in poi?",
    nothing_until_confirm: "Non succede nulla finché non conferma.",
    quarantine_of: "Quarantena di {address}",
    webmail_of: "Webmail di riserva di {address}",
    released: "Il messaggio è stato rilasciato ed è in arrivo nella sua casella di posta.",
    requested: "Il suo amministratore è stato invitato a rilasciare questo messaggio.",
    deleted: "Il messaggio è stato eliminato.",
    allowed: "{sender} è ora un mittente autorizzato.",
    done: "Fatto",
    from: "Da",
    subject: "Oggetto",
    received: "Ricevuto",
    category: "Categoria",
    nothing_here: "Nessun messaggio.",
    clean: "pulito",
    newsletter: "newsletter",
    spam: "spam",
    phishing: "phishing",
    virus: "virus",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_preferred_language_the_pages_speak() {
        assert_eq!(negotiate(None).lang, "en");
        assert_eq!(negotiate(Some("de-CH,de;q=0.9,en;q=0.8")).lang, "de");
        assert_eq!(negotiate(Some("es, it;q=0.5, fr;q=0.7")).lang, "fr");
        assert_eq!(negotiate(Some("ja")).lang, "en");
        assert_eq!(negotiate(Some("fr;q=0, it")).lang, "it");
        assert_eq!(words("IT").lang, "it");
        assert_eq!(words("rm").lang, "en");
    }

    #[test]
    fn every_language_a_user_can_choose_has_its_pages() {
        assert_eq!(ALL.len(), cleanmail_core::LANGUAGES.len());
        for language in cleanmail_core::LANGUAGES {
            assert_eq!(words(language).lang, language);
        }
    }

    #[test]
    fn every_language_fills_in_the_same_placeholders() {
        for words in ALL {
            assert!(words.quarantine_of.contains("{address}"), "{}", words.lang);
            assert!(words.webmail_of.contains("{address}"), "{}", words.lang);
            assert!(words.allowed.contains("{sender}"), "{}", words.lang);
        }
    }
}
