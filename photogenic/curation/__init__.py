"""Human curation in two stages, as Emu's: generalists keep what could be photogenic (recall),
specialists who know photography keep the best (precision) and write the captions.

    export     candidates (or stage-1 survivors) -> Label Studio tasks, labeling config, CSV
    simulate   simulated annotators: Label Studio exports written from the hidden ground truth
    importer   exports (Label Studio JSON, CSV) -> checked submissions -> votes, quotas, agreement
    agreement  Cohen's and Fleiss' kappa
    labels     what each stage asks (criteria, questions) and how an answer is spelled

Files live under ``<data.root>/<curation.dir>/`` (see ``layout``), versioned by DVC.
"""
