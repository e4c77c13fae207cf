# Builds conf/filter-intent-rules.yaml: two content-filter rules that look for the *intent* of an
# instruction override or a prompt leak (a verb of dropping or revealing, within a few words of
# something that is the model's own: its instructions, rules, system prompt, what it was told),
# rather than for fixed phrases. Word lists first, patterns built from them below.
# Texts are normalised (lower case, one space for any whitespace run) before matching.
def alt(xs): return "(?:" + "|".join(xs) + ")"
WORD = r"[a-z0-9'-]+"
def gap(n): return r"(?:\W+" + WORD + "){0," + str(n) + r"}\W+"
def verbs(stems): return r"\b" + alt(stems) + r"(?:e|s|es|d|ed|ing|a|ar|er|ez)?"

YOUR = r"(?:your|ur|yr)"
# Verbs that drop instructions ("ignore"), and weaker ones that only count with the model's own.
OV = [r"ignor", r"disregard", r"forget", r"forgot", r"overrid", r"overrul", r"bypass", r"circumvent", r"abandon", r"dismiss",
      r"void", r"nullif(?:y|ies|ied)", r"revok", r"rescind", r"suspend", r"neglect", r"overlook", r"unlearn", r"discard",
      r"scrap", r"ditch", r"skip", r"drop", r"defy", r"defie", r"contradict", r"break", r"violat", r"disobey", r"escap",
      r"olvid", r"vergiss", r"oubli", r"ignorier", r"dimentic", r"esque.", r"descart", r"omit"]
OV_PHRASES = [r"(?:set|put|cast|push|leave) aside", r"pay no (?:attention|heed|mind) to", r"let go of",
      r"(?:don.t|do not|stop|quit) (?:paying|pay) (?:any )?attention to", r"(?:throw|toss) (?:out|away)",
      r"(?:stop|quit|cease) (?:following|obeying|applying|using|honou?ring|adhering to|respecting|listening to)",
      r"no longer (?:follow|obey|apply|use|honou?r|adhere to|respect|listen to)",
      r"(?:not|never|don.t|do not|doesn.t|won.t|will not|shouldn.t) (?:follow|obey|apply|honou?r|adhere to|respect|comply with|listen to|abide by)",
      r"free yourself (?:of|from)", r"break(?:s|ing)? (?:free )?(?:from|out of|of)", r"broken free (?:of|from)",
      r"deviate from", r"step outside", r"take(?:s|n)? precedence over", r"(?:is|are) (?:above|higher than)", r"(?:act|go|work) against", r"move past", r"get around", r"opt out of"]
WEAK = [r"cancel", r"eras", r"wip", r"purg", r"delet", r"remov", r"reset", r"clear", r"replac", r"swap",
        r"substitut", r"rewrit", r"reprogram", r"redefin", r"overwrit", r"updat", r"chang", r"modif(?:y|ies|ied)",
        r"amend", r"edit", r"rewir", r"supersed", r"lift", r"expir", r"retir", r"rescind"]
TM = ["your", "ur", "previous", "prior", "earlier", "above", "preceding", "foregoing", "former", "original",
      "initial", "built-in", "builtin", "system", "developer", "hidden", "preset", "pre-set", "programmed",
      "safety", "moderation", "ethical", "openai", "anthropic", "operator", "aforementioned", "underlying",
      "pre-existing", "startup", "baseline"]
Q = ["all", "any", "every", "each", "whatever", "whichever"]
TN = [r"instructions?", r"instruction set", r"directions?", r"directives?", r"rules?", r"rule ?sets?", r"rulebook",
      r"guidelines?", r"guard ?rails?", r"prompts?", r"programming", r"polic(?:y|ies)", r"constraints?",
      r"restrictions?", r"limitations?", r"safeguards?", r"filters?", r"commands?", r"orders", r"training",
      r"configuration", r"config", r"conditioning", r"alignment", r"protocols?", r"boundaries", r"principles",
      r"mandates?", r"briefing", r"setup", r"context", r"guidance", r"parameters", r"persona", r"safety",
      r"checklist", r"system message", r"preamble"]
QN = [r"instructions?", r"directives?", r"rules?", r"guidelines?", r"guard ?rails", r"restrictions?", r"constraints?",
      r"programming", r"safeguards", r"polic(?:y|ies)", r"limitations", r"prompts?", r"guidance"]
STRONGN = [r"guard ?rails", r"safeguards", r"safety(?: (?:rules|guidelines|filters?|protocols?|polic(?:y|ies)|measures|settings|training|restrictions|checks|layer|mode))?",
           r"restrictions", r"censorship", r"content (?:polic(?:y|ies)|filters?|rules|guidelines)", r"moderation",
           r"ethic(?:s|al (?:guidelines|rules|constraints|boundaries|principles))", r"morals", r"conscience", r"alignment"]
WHO = r"(?:operator|developers?|creators?|makers?|company|admins?|administrators?|system|openai|anthropic|owners?|vendor|they|deployers?|programmers?)"
# Where instructions came from: the model's side of the conversation.
GIVEN = alt([
    r"(?:that |which )?you (?:were|have been|.ve been|had been) (?:given|told|handed|shown|fed|provided|programmed|instructed|set up|loaded|configured|trained|asked)(?: with| to)?",
    r"(?:that |which )?you (?:got|received|started(?: (?:this|the) (?:chat|conversation|session))? with|were set up with|are running (?:on|with)|began with|operate under)",
    r"(?:that |which )?(?:the |your )?" + WHO + r" (?:loaded|gave|wrote|set|put|configured|fed|installed|assigned|provided|told)(?: (?:into|in|for|to))? you",
    r"(?:given|handed|set|loaded|provided) (?:to you|earlier|before|at the (?:start|beginning))",
    r"(?:at|from) the (?:start|beginning|top)(?: of (?:this|the|our) (?:chat|conversation|session))?",
    r"(?:that|which) (?:define|defines|shape|shapes|control|controls|configure|configures|govern|governs|set up|sets up|bind|binds|guide|guides) (?:you|" + YOUR + r")",
    r"above", r"so far", r"before (?:this|now|me)",
])
TOLD = alt([
    r"(?:what|wat|whatever|everything|anything|all) (?:that )?(?:you|u) (?:were|have been|.ve been|had been|got) (?:told|given|instructed|programmed|taught|asked|set up)(?: to do| to say| with| earlier| before| b4| to)?",
    r"(?:everything|anything|all) (?:before|above) (?:it|this|that)\b",
    r"(?:what|whatever|everything|anything) (?:the |your )?" + WHO + r" (?:told|gave|instructed|said to|asked) you",
    r"(?:what|whatever|everything|anything|all) (?:came|was said|was written|you (?:saw|read|got)|is written) (?:before|earlier|above|previously|prior)",
])
def spelled(w): return r"\b" + r"[\W_]{1,2}".join(w) + r"\b"
override_verb = alt([verbs(OV), alt(OV_PHRASES), alt([spelled(w) for w in ["ignore", "disregard", "forget", "override", "bypass"]])]) + gap(5) + alt([
    r"(?:" + alt(Q) + r" (?:of )?)?(?:(?:the|these|those|such) )?" + alt(TM) + r"(?: [a-z'-]+){0,3} " + alt(TN) + r"\b",
    alt(Q) + r" (?:of )?(?:the |these |those )?" + alt(QN) + r"\b",
    r"(?:(?:" + alt(Q) + r") (?:of )?)?(?:the |these |those )?" + alt(TN) + r" " + GIVEN,
    TOLD,
    r"(?:(?:all|any|the|your|ur|these|those|its|of) )*" + alt(STRONGN) + r"\b",
    r"(?:all |everything |anything )?(?:of )?(?:the )?(?:above|foregoing|preceding)(?:\W*$|\W*[.,;:!]| and| then)",
])
weak_verb = verbs(WEAK) + gap(3) + alt([
    r"(?:(?:all|any|every) (?:of )?)?(?:" + YOUR + r"|the (?:system|developer|hidden|safety))(?: [a-z'-]+){0,2} " + alt(TN) + r"\b",
    r"(?:all|any|every) (?:of )?(?:the |your )?(?:previous|prior|earlier|above|preceding|former|original|initial) " + alt(QN) + r"\b",
    r"(?:(?:" + alt(Q) + r") (?:of )?)?(?:the |these |those )?" + alt(QN) + r" " + GIVEN,
])
VOIDED = alt([r"void", r"null", r"cancel+ed", r"revoked", r"rescinded", r"obsolete", r"invalid(?:ated)?", r"superseded",
           r"replaced", r"overridden", r"lifted", r"suspended", r"deprecated", r"expired", r"disabled", r"removed",
           r"deleted", r"withdrawn", r"retired", r"off", r"gone", r"waived", r"inactive", r"not active", r"turned off", r"switched off",
           r"no longer (?:valid|applicable|in (?:effect|force)|active|relevant|binding|apply)", r"not (?:valid|applicable|in effect|binding)"])
MULTI = [
    r"\b(?:ignora|olvida|descarta|omite)r? (?:todas? )?(?:tus |las |sus |mis )?(?:instrucciones|reglas|directrices|indicaciones)\b",
    r"\b(?:ignore[rz]?|oublie[rz]?) (?:toutes )?(?:les |tes |vos |ses )?(?:instructions|r.gles|consignes|directives)\b",
    r"\b(?:ignorier(?:e|en)?|vergiss|vergessen sie) (?:alle )?(?:die |deine |ihre )?(?:vorherigen |bisherigen |alten |fr.heren )?(?:anweisungen|regeln|instruktionen|vorgaben)\b",
    r"\b(?:ignora|dimentica) (?:tutte )?(?:le |tue )?(?:istruzioni|regole)\b",
    r"\b(?:ignore|ignora|esque.a) (?:todas )?(?:as |suas )?(?:instru..es|regras)\b",
]
DECLARED = ([
    r"\b(?:guard ?rails|safety|safe_?completion|content_?filter(?:ing)?|moderation|jailbreak_?protection|restrictions|censorship|policy_?checks?|refusals?)\w*\s*[:=]\s*\W?(?:false|off|disabled|none|no)\b",
    r"\b\w*override\w*\s*[:=]\s*\W?(?:true|on|enabled|yes)\b",
    r"\b(?:safety|refusal|filter|moderation|guard ?rail|censorship)\w*(?: [a-z]+){0,2} (?:is|are) (?:now )?(?:switched off|turned off|disabled|off|inactive|not active|suspended|lifted)\b",
    r"\b(?:an? )?(?:[a-z]+ )?(?:ai|assistant|bot|model|chatbot|llm|gpt)s? (?:has|have|with) no (?:content )?(?:polic(?:y|ies)|rules|restrictions|filters|guidelines|limits)\b",
    r"\b(?:answers?|responses?|outputs?|replies) (?:are|will be|is) (?:never|not|no longer|un) ?(?:filtered|censored|moderated|restricted)\b",
    r"\b(?:must|will|shall) (?:now )?comply with (?:every|all|any) (?:user )?(?:request|command|instruction|prompt)s?\b",
    r"\bincluding (?:those|ones|requests) (?:previously|formerly|normally) (?:disallowed|forbidden|blocked|refused|prohibited)\b",
    r"\b(?:may|can|must|should|will) (?:no longer|not|never) (?:decline|refuse|reject|deny)(?: [a-z]+){0,2} (?:requests?|questions?|anything|prompts?)\b",
    r"\boverrid(?:e|es|ing) (?:the )?system\s*(?:[).,;:!]|$)",
    r"\b(?:treat|consider|regard) (?:every|all|my|this user.s|these|each) (?:\w+ ){0,3}(?:message|request|instruction|input|prompt)s? (?:\w+ ){0,4}as (?:coming from|from|if from|issued by|written by|sent by) (?:the |your )?(?:system|admin|administrator|developer|operator|root)",
    r"\b(?:elevated|admin|root|developer|unrestricted|full|superuser) (?:privileges|access|permissions|mode) (?:granted|enabled|unlocked|activated)\b",
    r"\bunrestricted (?:output|mode|access) (?:enabled|granted|on|unlocked)\b",
    r"\byou are no longer (?:an? |the )?(?:[a-z'-]+ ){0,2}(?:assistant|ai|bot|model|chatbot)\b",
    r"\bsystem prompt (?:patch|update|override|change|amendment|hotfix)\b",
    r"\b(?:setup|instructions|system prompt|rules|prompt|(?:earlier|previous|prior|first) (?:part|parts|portion) of (?:this|the|our) (?:conversation|chat|session))\b" + gap(8) + r"(?:never (?:happened|existed)|(?:did not|didn.t|does not|doesn.t) (?:happen|exist))",
    r"\binstead of (?:your|the|any|those) (?:[a-z-]+ )?(?:original|previous|prior|old|default|initial|existing|system|usual|normal|standard|current) (?:ones|instructions|rules|guidelines|programming|directives|prompt|polic(?:y|ies))\b",
    r"\b(?:new|updated|revised|real|actual|true|latest|override|replacement|secret|hidden|special|additional|amended) (?:system |core |admin |developer |operator )?(?:instructions?|directives?|rules|prompt|guidelines|orders|mandate|programming)\s*[:-]",
    r"\b" + YOUR + r" (?:new|only|real|true|actual|updated|sole|revised) (?:instructions?|rules?|directives?|guidelines|system prompt|programming|polic(?:y|ies)|mandate|configuration) (?:is|are|will be|say|now|:)",
    r"\b" + YOUR + r" (?:only|sole) (?:rule|instruction|directive|priority|purpose|job|task|law|master|authority|principle) (?:is|from now|now)",
    # the old rules declared void
    alt([alt(["previous", "prior", "earlier", "above", "original", "old", "existing", "current", "all", "your", "ur", "system", "default", "initial", "safety", "content"]) + r"(?: [a-z'-]+)? " + alt(TN),
         r"(?:the |your |all |these |those )?" + alt(TN) + r" " + GIVEN,
         r"(?:what|whatever|everything|anything) (?:you|u) (?:were|have been|.ve been) (?:told|instructed|given|programmed)(?: to do)?(?: before(?: this(?: message)?| now)?| earlier| previously)?"]) +
      r" (?:are|is|were|was|have|has|had)? ?(?:been )?(?:now |hereby |officially |all |just )?" + VOIDED + r"\b",
    r"\b" + YOUR + r" (?:[a-z'-]+ )?" + alt(TN) + r" (?:have|has|had) (?:been )?(?:changed|updated|rewritten|reset)\b",
    r"\b(?:consider|treat|regard|deem) (?:" + YOUR + r"|the|all) (?:[a-z'-]+ )?" + alt(TN) + r" (?:as )?(?:" + VOIDED + r"|deleted|non-?existent)\b",
    r"\b(?:" + YOUR + r"|the|all|any|these|those) (?:[a-z-]+ )?(?:rules|guidelines|restrictions|instructions|policies|filters|constraints|guardrails|safeguards|limitations) (?:no longer|don.t|do not|won.t|will not|doesn.t|does not|shall not|never) (?:apply|matter|count|exist|bind|restrict|limit)",
    r"\b(?:polic(?:y|ies)|rules|guidelines|restrictions|instructions|filters) (?:that|which) (?:govern(?:ed)?|bound|bind|constrain(?:ed)?|restrict(?:ed)?|appl(?:y|ied) to|limit(?:ed)?|control(?:led)?) you\b",
    r"\b(?:you are|you.re|you will be|you.ll be) (?:now |hereby |officially )?(?:no longer|not|free from being|un)(?: )?(?:bound|restricted|constrained|limited|governed|censored|filtered|moderated)\b",
    r"\bfrom (?:now on|this (?:point|moment) (?:on|forward)|here on)\b" + gap(4) + r"(?:no longer|not|never|without (?:any )?(?:rules|restrictions|limits|filters|guidelines|censorship|constraints))\b" + gap(2) + r"(?:bound|restricted|limited|follow|obey|filter|censor|refuse|rules|restrictions|guidelines)",
    # authority claimed together with an order to change the rules
    r"\b(?:i am|i.m|this is|we are|as) (?:your|the|from) (?:[a-z'-]+ ){0,3}(?:developer|admin|administrator|creator|owner|operator|sysadmin|maker|engineer|programmer|trainer|supervisor|vendor|provider|security|compliance|it department|deployer)\b" + gap(12) +
      alt([r"overrid", r"unlock", r"disabl", r"bypass", r"lift", r"remov", r"suspend", r"authori[sz]", r"grant", r"permission", r"new (?:instructions|rules|directives)",
           r"(?:command|order|instruct) you", r"you (?:must|will|are to|can now)", r"replac", r"rewrit", r"supersed", r"outrank", r"pre-?approved",
           r"no (?:limits|restrictions|rules|filters)", r"(?:rules|restrictions|policies|instructions|parameters) (?:are|have been|were)"]),
    r"\bi have (?:root|admin|administrator|developer|sudo|full|elevated|operator|superuser) (?:access|privileges|rights|permissions|clearance)\b" + gap(10) + r"(?:instructions|commands|orders|requests|words)",
    r"\b(?:my|these|the user.s|user) (?:[a-z]+ )?(?:instructions|commands|orders|messages|requests|words) (?:now |should |will |must )?(?:outrank|override|supersede|take precedence over|trump|come before|are above|rank above|have priority over|overrule|beat)\b",
    r"\b(?:follow|obey|prioriti[sz]e|listen to) (?:only )?(?:my|the user.s|these) (?:[a-z]+ )?(?:orders|commands|instructions|words|requests) (?:over|above|before|instead of|rather than) (?:" + YOUR + r"|the system|any (?:other|previous|prior)|all (?:other|previous|prior))",
    r"\b(?:highest|top|first|absolute)[ -]priority (?:instructions|commands|orders|directives)\b",
    r"\b(?:end|close) of (?:the )?(?:system|developer|original|initial|hidden) (?:prompt|message|instructions)\b",
    # fake role markers: "[system]", "<developer>", "### system", "<<sys>>"
    r"[\[<{(|]\s*/?\s*(?:system|sys|developer|dev|admin)(?:[ _-]?(?:message|prompt|override|instructions?|notice|update|command|mode|note))?\s*[\]>})|:]",
    r"#{2,}\s*(?:system|admin|developer|new instructions|instructions|override|updated (?:configuration|instructions|rules|policy))\b",
    r"\b(?:system|developer|security|root|sudo|priority|operator) (?:override|overrule|directive|authori[sz]ation code)\b",
    r"\bsudo (?:mode|access)\b|\badmin(?:istrator)? (?:mode|access|privileges?) (?:enabled|activated|granted|on)\b",
    r"\b(?:disabl|turn(?:ed)? off|switch(?:ed)? off|deactivat|remov|lift|suspend|bypass)(?:e|es|ed|ing)? (?:all |any |of |the )*(?:" + YOUR + r" (?:content |safety |moderation |output )?(?:filters?|filtering|restrictions)|(?:content|safety|moderation|output) (?:filters?|filtering|restrictions)|guard ?rails|safeguards|safety (?:rules|checks|features|settings|mode)|censorship|moderation)\b",
    r"\b(?:safety|safety[_ ]?(?:mode|filters?|checks?|rules)|filters?|filtering|guardrails|content[_ ](?:rules|filter(?:ing)?|polic(?:y|ies))|moderation|restrictions|censorship|rules|refusals)\s*(?:[:=]\s*|(?:is |are )?(?:now |set to |turned |switched )?)(?:off|disabled|suspended|lifted)\b",
    r"\byou(?: are|.re| will| must| should| can| shall)? (?:now )?(?:be )?(?:in|enter(?:ing)?|switch(?:ed|ing)? (?:in)?to|operat(?:e|ing) in|go(?:ing)? into|activated?|running in|boot(?:ed)? into) (?:the )?(?:debug|maintenance|admin|administrator|root|sudo|god|developer|dev|unrestricted|unfiltered|uncensored|jailbreak|jailbroken|dan|test|testing|diagnostic|service|superuser|override|raw|free) mode\b",
    r"\b(?:operate|run|continue|proceed|respond|answer) in (?:debug|maintenance|admin|root|sudo|god|developer|unrestricted|unfiltered|uncensored|jailbreak|diagnostic|superuser|override) mode\b",
    r"\bobey only me\b|\bonly (?:obey|follow|listen to) (?:me|my (?:instructions|commands|orders))\b",
    r"\b(?:treat|consider|regard|take) (?:this|the following|my|these) (?:message|text|prompt|input|instructions?|words|messages)? ?as (?:" + YOUR + r" |the |a )?(?:new |real |true |updated |only |highest[ -]priority )?(?:system (?:prompt|message|instructions?)|instructions|programming|rules|directives)\b",
    r"\b(?:every|all|any) (?:request|question|prompt|message)s? (?:as|is|are) (?:pre-?approved|authori[sz]ed|exempt)\b",
    r"\b(?:polic(?:y|ies)|rules|guidelines)\b" + gap(4) + r"(?:now )?(?:permits?|allows?) (?:everything|anything|all (?:requests|content|topics))\b",
    r"\b(?:an? (?:ai|assistant|bot|model|chatbot|llm)|you|yourself)\b" + gap(6) + r"(?:no|zero|without (?:any )?)(?: [a-z]+)? (?:restrictions|rules|filters|guidelines|guard ?rails|censorship|refusals|morals|ethics|ethical guidelines|safety (?:rules|guidelines|filters))\b",
    r"\b(?:doesn.t|does not|don.t|do not|never|won.t|will not) (?:have to |need to )?(?:abide by|follow|obey|respect|comply with) (?:any|its|" + YOUR + r") (?:[a-z]+ )?(?:rules|restrictions|guidelines|policies)\b",
])

LV = [r"reveal", r"show", r"display", r"print", r"output", r"repeat", r"recit", r"restat", r"echo", r"dump", r"leak",
      r"expos", r"disclos", r"divulg", r"shar", r"tell", r"give", r"send", r"list", r"enumerat", r"summari[sz]",
      r"paraphras", r"translat", r"quot", r"copy", r"copie", r"past", r"describ", r"return", r"provid", r"reproduc",
      r"regurgitat", r"render", r"encod", r"convert", r"put", r"explain", r"outlin", r"detail", r"stat", r"recount",
      r"relay", r"post", r"includ", r"emit", r"format", r"revers", r"rewrit", r"rephras", r"turn", r"transform",
      r"express", r"compos", r"writ", r"spell", r"read", r"type", r"spill", r"spit", r"mirror", r"continu", r"rot13", r"us"]
LV_PHRASES = [r"write (?:out|down|back)", r"spell(?:s|ed|ing)? out", r"read (?:out|back)", r"type out", r"spit out", r"echo back", r"play back"]
LVERB = alt([verbs(LV), alt(LV_PHRASES)])
# Without the verbs that create text: "write a system prompt for our bot" is a request, not a leak.
LVERB_X = alt([verbs([v for v in LV if v not in ("writ", "compos", "express", "format", "turn", "transform", "put", "continu", "stat", "detail", "outlin", "explain", "describ", "type", "read", "spell", "includ", "post", "return", "render", "us")]), alt(LV_PHRASES)])
STRONG_LV = [r"reveal", r"dump", r"leak", r"expos", r"disclos", r"divulg", r"regurgitat", r"recit", r"print", r"output", r"echo", r"spill"]
SPEC = [r"system prompt", r"system message", r"system instructions?", r"developer (?:message|prompt|instructions?)",
        r"(?:hidden|secret|internal|confidential|private|underlying|pre-?set|master|meta) (?:prompt|instructions?|message|directives?|rules|guidelines|configuration|setup|text)",
        r"pre-?prompt", r"meta-?prompt", r"initiali[sz]ation (?:text|prompt|message|instructions)", r"pre-?(?:conversation|chat|session) (?:instructions|prompt|text|message)"]
MODS = r"(?:full|entire|complete|exact|whole|verbatim|raw|underlying|internal|confidential|private|secret|hidden|original|initial|real|actual|true|system|core|operating|standing|startup|opening|starting|first|pre-?conversation|pre-?chat|base|default)"
GEN = r"(?:prompt|instructions|programming|configuration|directives|guidelines|rules|setup|briefing|system prompt|context(?: window)?|preamble|initiali[sz]ation|persona|operating parameters|parameters|memory)"
FORMATS = r"(?:markdown|json|a table|table|code ?block|a list|list|bullet(?: points)?|a poem|poem|haiku|song|story|base64|hex|yaml|xml|csv|french|spanish|german|chinese|japanese|another language|rot13|binary|morse|pig latin|emoji)"
LEAK = ([
    LVERB_X + r"\W+(?:(?:me|us)\W+)?(?:(?:all|any) (?:of )?)?(?:" + MODS + r" )*" + alt(SPEC) + r"\b",
    LVERB_X + gap(4) + r"(?:(?:me|us) )?(?:(?:all|any) (?:of )?)?(?:" + YOUR + r"|the|its|this assistant.s|the assistant.s|the bot.s|the model.s) (?:" + MODS + r" )*" + alt(SPEC) + r"\b",
    r"\b" + YOUR + r" (?:[a-z-]+ )?" + alt(SPEC) + r"\b",
    LVERB + gap(4) + r"(?:(?:me|us) )?(?:(?:all|any) (?:of )?)?" + YOUR + r" (?:" + MODS + r" )+" + GEN + r"\b",
    LVERB + gap(4) + r"(?:(?:me|us) )?(?:(?:all|any) (?:of )?)?" + YOUR + r" " + GEN + r" (?:verbatim|word for word|exactly|in full|as written|as given|above|before|character by character|letter by letter|line by line|from the (?:start|beginning|top)|(?:in|into|as|to) (?:an? |the )?(?:[a-z]+ )?" + FORMATS + r")",
    verbs(STRONG_LV) + gap(3) + r"(?:(?:me|us) )?(?:(?:all|any) (?:of )?)?" + YOUR + r" " + GEN + r"\b",
    r"(?:the|" + YOUR + r") (?:" + MODS + r" )*(?:prompt|instructions|rules|guidelines|directives|programming|configuration|setup|preamble|initiali[sz]ation text|persona) " + GIVEN,
    LVERB + gap(4) + r"(?:the )?(?:words|text|content|messages?|lines?|sentences?) (?:at|from) the (?:beginning|start|top) of (?:this|the|our) (?:conversation|chat|context|session|prompt)",
    r"(?:the )?(?:words|text|lines|sentences) (?:above|before this) (?:starting|beginning) (?:with|from|at)",
    r"\b(?:starting|beginning) (?:with|from|at) (?:the (?:phrase|words?|sentence) )?\W?you are\b",
    r"(?:full|entire|complete|exact|whole|raw|verbatim) (?:text|contents?|wording) of (?:" + YOUR + r"|the) (?:[a-z-]+ )?" + GEN,
    LVERB + gap(4) + r"(?:everything|all|anything|whatever) (?:(?:of )?(?:the )?(?:text|words|content|messages?|instructions|lines)? ?)?(?:above|before (?:this|my|the)|prior to (?:this|my)|preceding (?:this|my)|that came before|written before|you (?:were|have been|.ve been) (?:told|given|instructed))",
    LVERB + gap(4) + r"(?:the|" + YOUR + r") (?:text|words|content|messages?|instructions|lines?) (?:above|before|preceding|prior to) (?:this|my|the user)",
    r"(?:first|very first|opening|initial|earliest) (?:message|line|sentence|instruction|words?|prompt|paragraph|text)s? (?:you (?:were|got|received|saw)(?: given| shown| told)?|(?:in|of) (?:" + YOUR + r"|this|the|our) (?:conversation|chat|context|session|prompt|memory|input))",
    r"\bwhat (?:is|are|was|were|.s|.re) (?:in |written in |inside |contained in )?(?:" + YOUR + r"|the) (?:" + MODS + r" )*" + alt(SPEC) + r"\b",
    r"\bwhat (?:is|are|was|were|.s|.re) (?:in |written in |inside )?" + YOUR + r" (?:" + MODS + r" )*" + GEN + r"(?: exactly| verbatim| word for word)?\s*(?:\?|$|\.)",
    r"\bwhat (?:were|have|had) you (?:been )?(?:told|instructed|programmed|prompted|configured|given|asked) (?:to (?:do|say|avoid|not)|not to|before|by|in (?:" + YOUR + r"|the) (?:system|initial|first|hidden))",
    r"\bwhat you (?:were|have been|.ve been) (?:told|instructed|asked|programmed) (?:not )?to (?:say|tell|share|reveal|disclose|keep|hide)",
    r"\bwhat (?:did|have|has) (?:they|" + YOUR + r" (?:developers?|creators?|makers?|operators?|owners?|programmers?|admins?)|openai|anthropic|the (?:developers?|operators?|company)) (?:tell|told|instruct|instructed|program|programmed|ask|asked) you\b",
    r"\bhow (?:were|have) you (?:been )?(?:instructed|prompted|configured|programmed|set up)\b",
    r"\b(?:what|which) (?:instructions|rules|guidelines|directives|constraints|restrictions) (?:were you|have you been|did you (?:get|receive)|did (?:they|the \w+) give you|are you (?:following|operating under|bound by|running with)|do you (?:follow|have|operate under))",
    r"\bwhat (?:text|content|words|instructions|information|data|message) (?:appears?|is|are|comes?|came|sits?|exists?|was placed|was put) (?:\w+ ){0,2}(?:before|above|prior to|ahead of|at the (?:start|top|beginning) of)" + gap(4) + r"(?:" + YOUR + r" (?:context|prompt|input|memory|instructions|conversation)|my first message|the (?:user|conversation|chat)|this (?:conversation|chat))",
    r"\bmessage with (?:the )?role\W{0,3}system\b",
    r"(?:all )?(?:the )?(?:text|content|words|messages?) (?:that )?(?:appears?|comes?|came|is|was|were) (?:before|above|ahead of) (?:my|the user.s|the first user) (?:first )?(?:message|question|input)",
    r"\bwhat(?:.s| is| are) (?:currently |really )?in (?:your|ur) (?:context(?: window)?|memory|system prompt|prompt)\b",
    r"\b(?:the |my |our )?(?:prompt|instructions|system prompt) (?:i|we) (?:gave|wrote for|set for|loaded into|configured for) (?:you|u)\b",
    r"\b(?:names?|descriptions?|schemas?|definitions?|signatures?|specs?|specifications|list) (?:\w+ ){0,4}(?:of )?(?:all )?(?:the )?(?:tools|functions|plugins|actions) (?:you have|available to you|you can (?:call|use)|you.ve been given|you were given)",
    r"\beverything (?:\w+ ){0,3}(?:at|from) the (?:start|beginning) of (?:this|the|our) (?:session|conversation|chat)",
    r"\bmy (?:system prompt|instructions|initial prompt|hidden instructions|secret instructions) (?:begins?|starts?|says?|reads?|goes)\b",
    r"\bincluding (?:any|the|all) (?:system|developer|hidden)(?: or (?:system|developer|hidden))? (?:messages?|prompts?|instructions)\b",
    r"\b(?:words|text|wording|phrases?) (?:from|of|in) (?:" + YOUR + r") (?:" + MODS + r" )*(?:setup|prompt|instructions|system prompt|configuration|preamble)\b",
    r"\bwhat were you (?:told|instructed) (?:about|regarding|concerning)\b",
    r"\bas (?:it )?appears? in " + YOUR + r" (?:prompt|instructions|context|system (?:prompt|message)|configuration)",
    r"\b(?:prompt|instructions|text|rules) (?:that|which) (?:define|defines|shape|shapes|control|controls|configure|configures|govern|governs) " + YOUR + r"? ?(?:you|persona|behaviou?r|responses)\b",
    r"\b(?:repeat|print|output|show|copy|write|echo|translate|summari[sz]e|reproduce) (?:me )?(?:everything|all(?: of)? the text|all the words|all prior text) (?:above|before|at the (?:beginning|start)|so far)",
])
decl_items = MULTI + DECLARED
RULES = [("injection_override_intent", "instruction override", [override_verb, weak_verb] + decl_items),
         ("injection_leak_intent", "prompt leak", LEAK)]
# Alternatives per searched pattern: the filter searches each `patterns` item on its own (joined
# they multiply each other's states on hostile text); a few per item keeps the passes down.
GROUP = 4


def grouped(ps):
    return ["|".join("(?:" + p + ")" for p in ps[i:i + GROUP]) for i in range(0, len(ps), GROUP)]


print("""# Optional content-filter rule pack: instruction-override and prompt-leak *intent* rules.
# Generated by eval/injection_rules.py from its word lists (edit those, then
#   python3 eval/injection_rules.py > conf/filter-intent-rules.yaml ).
# Measure:  tollgate eval-filter eval/filter-heldout4.jsonl --rules conf/filter-intent-rules.yaml
# Use: copy the two rules under content_filter.rules in place of the ones named in `replaces`.
# Detection, false positives and cost (the filter is several times slower with these rules):
# docs/content-filter.md.
replaces: [injection_instruction_override, injection_prompt_leak]
rules:""")
for rid, name, pats in RULES:
    print(f"  - id: {rid}")
    print(f"    category: injection")
    print(f"    patterns:")
    for pat in grouped(pats):
        print("      - '" + pat.replace("'", "''") + "'")
    print(f"    severity: high")
    print(f"    reason: \"Prompt matched injection pattern: {name}. If this is a legitimate request, contact the platform team.\"")
