"""Every word the engine itself writes, per language, in one place.

Guideline texts come from the guideline; these are the engine's own words
around them: headings of rendered results (:data:`RESULT`), the review
document (:data:`REVIEW`), explanations (:data:`EXPLAIN`), CDS Hooks cards (:data:`SERVICE`). A language is
complete when it has every key of English; ``tests/test_words.py`` checks it.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["EXPLAIN", "FR_EVERY", "RESULT", "REVIEW", "SERVICE", "UNKNOWN_WORD", "words"]

UNKNOWN_WORD = {"fr": "inconnu", "en": "unknown"}

EXPLAIN: dict[str, dict[str, str]] = {
    "fr": {"yes": "oui", "no": "non", "input_unknown": "entrée inconnue", "no_row": "aucune ligne",
           "quoted": "« {} »",
           "borderline": "{label} à {value}, à moins de {tolerance} du seuil de {threshold} : de l'autre côté, {changes}.",
           "table_instead": "{table} donnerait « {there} » au lieu de « {here} »",
           "rule_fires": "« {rule} » s'appliquerait", "rule_not": "« {rule} » ne s'appliquerait plus",
           "rule_unknown": "« {rule} » serait indéterminé", "sep": " ; ",
           "score_range": "au moins {low}, au plus {high} ({count} {items})", "item_unknown": "élément inconnu",
           "items_unknown": "éléments inconnus"},
    "en": {"yes": "yes", "no": "no", "input_unknown": "input unknown", "no_row": "no row", "quoted": "“{}”",
           "borderline": "{label} at {value}, within {tolerance} of the {threshold} threshold: on the other side, {changes}.",
           "table_instead": "{table} would give “{there}” instead of “{here}”",
           "rule_fires": "“{rule}” would apply", "rule_not": "“{rule}” would no longer apply",
           "rule_unknown": "“{rule}” would be undetermined", "sep": "; ",
           "score_range": "at least {low}, at most {high} ({count} {items})", "item_unknown": "item unknown",
           "items_unknown": "items unknown"},
}

RESULT: dict[str, dict[str, str]] = {
    "fr": {
        "evaluated": "évalué le", "recommendations": "Recommandations", "none": "Aucune recommandation.",
        "undetermined": "Décisions non déterminées", "borderline": "Valeurs proches d'un seuil",
        "needs": "il manque", "dose": "Dose",
        "schedule": "Schéma", "source": "Source", "why": "Pourquoi", "evidence": "Preuves",
        "values": "Valeurs", "not_fired": "Règles non déclenchées", "notes": "Notes sur la source",
        "missing": "Faits non renseignés", "fhir_read": "Données FHIR", "fhir_unread": "Non lus depuis FHIR",
        "strength": "Force", "decision": "décision",
        "action": "action", "warning": "mise en garde", "contraindication": "contre-indication",
        "referral": "avis spécialisé", "information": "information",
        "oral": "per os", "intravenous": "IV", "subcutaneous": "SC", "intramuscular": "IM",
        "doses": "prises", "then": "puis", "ongoing": "au long cours",
        "infusion": "perfusion d'au moins", "min": "min", "per_day": "fois par jour", "for": "pendant",
        "hour": "heure", "day": "jour", "week": "semaine", "month": "mois", "year": "an",
        "hours": "heures", "days": "jours", "weeks": "semaines", "months": "mois", "years": "ans",
        "loading": "recharge", "maintenance": "entretien",
    },
    "en": {
        "evaluated": "evaluated on", "recommendations": "Recommendations", "none": "No recommendation.",
        "undetermined": "Undetermined decisions", "borderline": "Values close to a threshold",
        "needs": "needs", "dose": "Dose",
        "schedule": "Schedule", "source": "Source", "why": "Why", "evidence": "Evidence",
        "values": "Values", "not_fired": "Rules not fired", "notes": "Notes on the source",
        "missing": "Facts not given", "fhir_read": "FHIR data", "fhir_unread": "Not read from FHIR",
        "strength": "Strength", "decision": "decision",
        "action": "action", "warning": "warning", "contraindication": "contraindication",
        "referral": "referral", "information": "information",
        "oral": "oral", "intravenous": "IV", "subcutaneous": "SC", "intramuscular": "IM",
        "doses": "doses", "then": "then", "ongoing": "ongoing",
        "infusion": "infusion over at least", "min": "min", "per_day": "times a day", "for": "for",
        "hour": "hour", "day": "day", "week": "week", "month": "month", "year": "year",
        "hours": "hours", "days": "days", "weeks": "weeks", "months": "months", "years": "years",
    },
}



# French agrees "tous/toutes les" with the unit's gender.
FR_EVERY = {"hour": "toutes les", "day": "tous les", "week": "toutes les", "month": "tous les", "year": "tous les"}

REVIEW: dict[str, dict[str, str]] = {
    "fr": {"and": "et", "or": "ou", "not": "non", "known": "est renseigné", "unknown": "n'est pas renseigné",
           "in": "fait partie de", "not in": "ne fait pas partie de", "if": "si", "else": "sinon",
           "facts": "Faits (données d'entrée)", "derived": "Valeurs calculées", "tables": "Tables de décision",
           "rules": "Règles", "notes": "Ambiguïtés de la source et décisions", "not_encoded": "Non encodé",
           "when": "Quand", "then": "Alors", "source": "Source", "dose": "Dose", "schedule": "Schéma",
           "name": "Nom", "type": "Type", "unit": "Unité", "range": "Plage plausible", "other_units": "Autres unités",
           "row": "Ligne", "otherwise": "sinon", "hit": "politique", "decision": "Décision", "reason": "Raison",
           "version": "version", "status": "statut", "formula": "Formule", "today": "la date d'évaluation",
           "evidence": "Preuves", "kind": "Type", "strength": "Force", "rounded": "décimales :"},
    "en": {"and": "and", "or": "or", "not": "not", "known": "is given", "unknown": "is not given",
           "in": "is one of", "not in": "is not one of", "if": "if", "else": "otherwise",
           "facts": "Facts (inputs)", "derived": "Computed values", "tables": "Decision tables",
           "rules": "Rules", "notes": "Source ambiguities and decisions", "not_encoded": "Not encoded",
           "when": "When", "then": "Then", "source": "Source", "dose": "Dose", "schedule": "Schedule",
           "name": "Name", "type": "Type", "unit": "Unit", "range": "Plausible range", "other_units": "Other units",
           "row": "Row", "otherwise": "otherwise", "hit": "hit policy", "decision": "Decision", "reason": "Reason",
           "version": "version", "status": "status", "formula": "Formula", "today": "the evaluation date",
           "evidence": "Evidence", "kind": "Kind", "strength": "Strength", "rounded": "decimals:"},
}


SERVICE: dict[str, dict[str, str]] = {
    "fr": {"needed": "Données nécessaires", "needed_detail": "Pour décider, il manque :",
           "unreachable": "Serveur FHIR injoignable", "dose": "Dose", "contra": "Acide zolédronique contre-indiqué",
           "wrong_dose": "Dose d'acide zolédronique à corriger", "deferred": "Début différé : préalables non remplis",
           "replace": "Remplacer par", "borderline": "Valeur proche d'un seuil",
           "override_1": "avis spécialisé contraire", "override_2": "données plus récentes au dossier"},
    "en": {"needed": "Data needed", "needed_detail": "To decide, these are missing:",
           "unreachable": "FHIR server unreachable", "dose": "Dose", "contra": "Zoledronic acid contraindicated",
           "wrong_dose": "Zoledronic acid dose to correct", "deferred": "Start deferred: prerequisites not met",
           "replace": "Replace with", "borderline": "Value close to a threshold",
           "override_1": "specialist advice otherwise", "override_2": "more recent data in the record"},
}


def words(table: Mapping[str, Mapping[str, str]], lang: str) -> Mapping[str, str]:
    """The words of ``table`` in ``lang``, English for a language the engine does not speak."""
    return table.get(lang) or table["en"]
