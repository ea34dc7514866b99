"""The labelled carrier-traffic simulator: actors → calls → a time-ordered, signed event stream.

Each actor group is simulated column-wise with numpy (one seeded Generator, so a seed always gives
the same stream): call times follow the group's diurnal rhythm, callees its behaviour (contacts,
customers, random dialling), caller IDs its tactics (rotating pools, neighbor and on-net spoofing,
a relative's number). The calls are then sorted by time and emitted as the records the topics would
carry — CallSetup (with real PASSporTs where the carrier signs), Cdr, Complaint, audio metadata and
the home network's presence reports on its own subscribers (``presence``) — plus ground truth per
call and per presented number.

Caller IDs are presented the way trunks present them. A carrier with ``sends_pai`` (on-net and
domestic interconnects by default, and the signing VoIP peer) sends a P-Asserted-Identity in E.164
beside From; the others send From only. From is national form on-net, E.164 from interconnects,
``00``-prefixed from abroad and a SIP URI from VoIP peers. Calls a PBX places from an extension
(``legit.*.pbx_share``) carry the extension's own DDI in From and the organisation's main (pilot)
number, the one its carrier provisioned and asserts, in PAI. People who withhold their number
(``*.withheld_share``) send an anonymous From; on a trunk that sends PAI the network still asserts
who they are, elsewhere the call has no identity and is not signed. Ground truth is keyed exactly
as the services attribute calls (``services.common.identity``): the PAI's number when one is sent,
else From's, and for a withheld caller without PAI the trunk's bucket ``WITHHELD:<tenant>/<trunk>``.

Emergency calls come in the forms switches send them (``emergency_form``): bare digits,
``tel:`` with a global ``phone-context``, a ``sip:…;user=phone`` URI, the international ``+cc``
form, or bare digits with the IMS Request-URI ``urn:service:sos``.

No feature belongs to unwanted actors alone: legitimate look-alikes (MVNO subscribers in the
virtual ranges robocallers rent, new and ported numbers, businesses at B, C or unsigned, an
outbound dialler that looks like a campaign, complaints about legitimate numbers, legitimate calls
to honeypots) and adaptive campaigns (aged numbers, bought A attestation, low and slow, spread
wide) each have their own scenario keys and their own generator (``Stream``), so setting one to 0
leaves every other call as it was.

The label (``UNWANTED_KINDS``) is the dataset format's, in ``training.dataset``.
What lives where: ``_model`` holds the calls table (``Calls``), ``Population`` with its ``Trips``,
``PresenceEvents``, ``Simulation``, the hour weights and the identity helpers (``trunk_id``,
``identity_keys``, ``canonical``); ``_builder`` the seeded ``Builder`` with its shared draws, its
streams and the population's contact graph (MVNO and ported numbers included); ``_actors`` one
function per actor family (subscribers and their callbacks, foreign callers, the bulk callers:
couriers, call centres, reminders, bank alerts and outbound diallers; robocall campaigns, spoofers,
AI impersonators, emergency calls) and ``simulate``; ``_adaptive`` the adaptive campaigns;
``_presence`` home subscribers' trips abroad (drawn before the calls, which route by them) and the
presence reports (registration changes, periodic re-registration, on-net calls' start and end);
``_lookalikes`` the passes over the whole calls table (new numbers, wrong numbers to honeypots,
interconnect calls that lose their Identity header, complaints about legitimate numbers); ``_emit``
the ``Emitter`` (From/PAI, Identity headers, ``emergency_form``, CDRs, complaints, audio metadata,
presence reports, per-call truth); ``_dataset`` ``write_dataset`` and the truth files.
"""

from loadtest.simulate._actors import simulate
from loadtest.simulate._dataset import write_dataset
from loadtest.simulate._model import HOUR_WEIGHTS_BUSINESS, Simulation, trunk_id

__all__ = [
    "HOUR_WEIGHTS_BUSINESS",
    "Simulation",
    "simulate",
    "trunk_id",
    "write_dataset",
]
