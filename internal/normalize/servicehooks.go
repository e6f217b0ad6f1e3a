package normalize

import (
	"strings"
	"time"
)

// The contact-center platform documents the abandoned-conversation fields
// only in prose ("Customer Phone number, Time in queue, Time stamp, Queue")
// and the outbound-call fields loosely, so each field is looked up under the
// spellings integrations actually use, in folded form (see keyMatches), most
// likely first. docs/sources.md lists them for operators.
var (
	hookPhoneKeys = []string{
		"customerphonenumber", "customerphone", "customernumber", "phonenumber",
		"phone", "callerphonenumber", "callernumber", "callerid", "ani", "from",
		"customeridentifier", "contactphonenumber", "msisdn",
	}
	hookTargetPhoneKeys = []string{
		"targetphonenumber", "targetnumber", "target", "dialednumber",
		"dialnumber", "destinationnumber", "destination", "to",
		"customerphonenumber", "phonenumber", "phone", "number",
		"customeridentifier",
	}
	hookTimeKeys = []string{
		"timestamp", "time", "abandonedat", "abandonedtime", "eventtime",
		"eventtimestamp", "occurredat", "datetime", "date", "createdat",
		"timestamputc", "initiatedat", "startedat",
	}
	// Work items name the customer by customerIdentifier first.
	workItemPhoneKeys = append([]string{"customeridentifier"}, hookPhoneKeys...)

	hookQueueKeys        = []string{"queue", "queuename", "queueid", "queuetitle"}
	hookConversationKeys = []string{"conversationid", "primaryconversationid", "interactionid"}
	hookCustomerKeys     = []string{"customerid", "customerrecordid"}
	hookAgentKeys        = []string{"agentid", "agentuserid", "agent"}

	// Wrappers whose contents are about someone other than the customer;
	// their phone or id must not be taken for the customer's (nor a
	// queue's number: hookQueueKeys, for phone numbers).
	hookSkipNested = []string{"agent", "user", "participant", "participants"}

	// Bare "id" only counts inside wrappers that stand for the whole event.
	hookEventWrappers = []string{"data", "payload", "body", "event", "workitem", "item"}

	// Time-in-queue field names: a base, then an optional unit suffix that
	// sets the unit of bare numbers ("timeInQueueMs", "wait_time_seconds").
	queueTimeBases = []string{
		"timeinqueue", "queuetime", "queuedtime", "queuewaittime", "waittime",
		"waitingtime", "waitduration", "queueduration", "queuedduration",
		"durationinqueue",
	}
	queueTimeSuffixes = map[string]time.Duration{
		"": time.Second, "s": time.Second, "sec": time.Second, "secs": time.Second,
		"second": time.Second, "seconds": time.Second, "insec": time.Second,
		"insecs": time.Second, "inseconds": time.Second,
		"ms": time.Millisecond, "msec": time.Millisecond, "msecs": time.Millisecond,
		"millis": time.Millisecond, "millisecond": time.Millisecond,
		"milliseconds": time.Millisecond, "inms": time.Millisecond,
		"inmillis": time.Millisecond, "inmilliseconds": time.Millisecond,
		"min": time.Minute, "mins": time.Minute, "minute": time.Minute,
		"minutes": time.Minute, "inminutes": time.Minute,
	}
)

// hookScope is where lenient lookups search: the body, then up to maxNested
// objects one level down (a "data" or "conversation" wrapper).
type hookScope []*value

func newHookScope(root *value, skip ...string) hookScope {
	if root.kind != kindObject {
		return nil
	}
	return append(hookScope{root}, root.nested(append(skip, hookSkipNested...)...)...)
}

func (s hookScope) str(names ...string) string {
	for _, o := range s {
		if v := o.str(names...); v != "" {
			return v
		}
	}
	return ""
}

func (s hookScope) phone(names []string, opts Options) string {
	for _, o := range s {
		if p := phoneFrom(o, names, opts); p != "" {
			return p
		}
	}
	return ""
}

func (s hookScope) time(names ...string) *time.Time {
	for _, o := range s {
		if t := firstTime(o, names...); t != nil {
			return t
		}
	}
	return nil
}

// queue reads a queue given as a name, an id, or an object with either.
func (s hookScope) queue() string {
	for _, o := range s {
		for _, n := range hookQueueKeys {
			q := o.get(n)
			if q == nil {
				continue
			}
			if q.kind == kindObject {
				if v := q.str("name", "queuename", "id", "queueid"); v != "" {
					return v
				}
				continue
			}
			if v := scalarText(q); v != "" {
				return v
			}
		}
	}
	return ""
}

func (s hookScope) conversation() string {
	if v := s.str(hookConversationKeys...); v != "" {
		return v
	}
	if len(s) == 0 {
		return ""
	}
	c := s[0].get("conversation")
	if c != nil && c.kind == kindObject {
		return c.str("id", "conversationid")
	}
	return scalarText(c)
}

// agent reads the agent as an id or a person object: the first alias that
// names one, so that an "agentId": null beside an "agent" object (as
// serialisers that write every field send it) does not hide the agent.
func (s hookScope) agent() *Actor {
	for _, o := range s {
		for _, n := range hookAgentKeys {
			if a := actorFrom(o.get(n)); a != nil {
				return a
			}
		}
	}
	return nil
}

func (s hookScope) queueTimeMs() *int64 {
	for _, o := range s {
		for i := range o.members {
			m := &o.members[i]
			unit, ok := queueTimeUnit(m.key)
			if !ok {
				continue
			}
			if ms := queueTimeValue(&m.val, unit); ms != nil {
				return ms
			}
		}
	}
	return nil
}

// queueTimeUnit reports whether key names a time in queue, and the unit of a
// bare number under it.
func queueTimeUnit(key string) (time.Duration, bool) {
	if len(key) > 64 {
		return 0, false
	}
	fk := FoldKey(key)
	for _, base := range queueTimeBases {
		if rest, ok := strings.CutPrefix(fk, base); ok {
			if unit, ok := queueTimeSuffixes[rest]; ok {
				return unit, true
			}
		}
	}
	return 0, false
}

// workItemID returns the work item's id: its workItemId, or its own "id",
// looked up only at the top level and in whole-event wrappers. A root that
// wraps the work item (its fields in "data" and none at the top) is an
// envelope, whose "id" names the delivery, not the work item: the
// wrapper's "id" comes first then, so that a close delivered twice in two
// envelopes is one work item.
func (s hookScope) workItemID() string {
	if v := s.str("workitemid"); v != "" {
		return v
	}
	if len(s) == 0 {
		return ""
	}
	root := s[0]
	if root.get(workItemFields...) == nil {
		for _, w := range hookEventWrappers {
			if o := root.obj(w); o != nil && o.get(workItemFields...) != nil {
				if v := o.str("id"); v != "" {
					return v
				}
			}
		}
	}
	if v := root.str("id"); v != "" {
		return v
	}
	for _, w := range hookEventWrappers {
		if o := root.obj(w); o != nil {
			if v := o.str("id"); v != "" {
				return v
			}
		}
	}
	return ""
}

// workItemFields are what a closed work item says of itself, and an
// envelope around it does not.
var workItemFields = []string{"closedat", "isoutbound", "outbound", "direction", "mediatype", "channel", "customeridentifier"}

func decodeServiceHook(ev *Event, root *value, opts Options) {
	s := newHookScope(root)
	// A queue object's number is the line the customer called, not the
	// customer's.
	phones := newHookScope(root, hookQueueKeys...)
	ev.CustomerID = s.str(hookCustomerKeys...)
	ev.ConversationID = s.conversation()
	ev.Queue = s.queue()
	if a := s.agent(); a != nil {
		ev.Actor = a
		ev.AgentID = a.ID
	}

	switch ev.Type {
	case "abandoned-conversation":
		ev.Phone = phones.phone(hookPhoneKeys, opts)
		ev.OccurredAt = s.time(hookTimeKeys...)
		ev.TimeInQueueMs = s.queueTimeMs()
		ev.Summary = abandonedSummary(ev.Queue, ev.TimeInQueueMs)

	case "outbound-call":
		ev.Phone = phones.phone(hookTargetPhoneKeys, opts)
		ev.OccurredAt = s.time(hookTimeKeys...)
		ev.Summary = "Outbound call started" + byAgent(ev.Actor)

	case "workitem-closed":
		ev.WorkItemID = s.workItemID()
		ev.OccurredAt = s.time(append([]string{"closedat", "closedtime", "closeddate", "createdat"}, hookTimeKeys...)...)
		// customerIdentifier is a phone number for calls and SMS but an
		// email or handle for web chat; only the former correlates.
		ev.Phone = phones.phone(workItemPhoneKeys, opts)
		ev.IsOutbound = s.outbound()
		var notes []string
		if m := s.str("mediatype", "channel"); m != "" {
			notes = append(notes, clip(m, summaryPartLen))
		}
		if ev.IsOutbound != nil {
			if *ev.IsOutbound {
				notes = append(notes, "outbound")
			} else {
				notes = append(notes, "inbound")
			}
		}
		ev.Summary = "Work item closed" + byAgent(ev.Actor)
		if len(notes) > 0 {
			ev.Summary += " (" + strings.Join(notes, ", ") + ")"
		}
	}
}

// outbound reads isOutbound, or a "direction" of "outbound"/"inbound".
func (s hookScope) outbound() *bool {
	for _, o := range s {
		if b := o.flag("isoutbound", "outbound"); b != nil {
			return b
		}
	}
	switch strings.ToLower(s.str("direction")) {
	case "outbound", "outgoing":
		b := true
		return &b
	case "inbound", "incoming":
		b := false
		return &b
	}
	return nil
}

func abandonedSummary(queue string, ms *int64) string {
	s := "Abandoned"
	if queue != "" {
		s += " in queue " + clip(queue, summaryPartLen)
	}
	if ms != nil {
		s += " after " + formatMs(*ms)
	}
	if s == "Abandoned" {
		return "Conversation abandoned"
	}
	return s
}
