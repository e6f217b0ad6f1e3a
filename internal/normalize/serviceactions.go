package normalize

import (
	"strconv"
	"strings"
	"time"
)

// noChangeReply is the answer to a before-* hook that leaves the case as it
// is: every documented response field null or false, except
// useCustomerContactInfo, which the platform reads as a setting rather than a
// "keep" marker, so it echoes the request. A non-boolean request value
// (the strings "true"/"false" aside) echoes as null rather than as something
// the platform might reject.
func noChangeReply(root *value) []byte {
	echo := "null"
	if b := root.flag("usecustomercontactinfo"); b != nil {
		echo = strconv.FormatBool(*b)
	}
	return []byte(`{"fields":null,"tagIds":null,"removeCustomer":false,"customerRecordId":null,` +
		`"useCustomerContactInfo":` + echo +
		`,"contactPhoneNumber":null,"contactEmail":null,"serviceTypeId":null,"channel":null,` +
		`"preventSelfCheckIn":null,"cancelled":false}`)
}

// actionPhoneKeys are where a service action keeps the contact's phone number.
var actionPhoneKeys = []string{"contactphonenumber", "phonenumber"}

// decodeServiceAction reads the request of a service-action hook (the
// "Before Resolve" and "Before Book Appointment" documents describe the
// fields; the other hooks send the same case shape).
func decodeServiceAction(ev *Event, root *value, opts Options) {
	if IsBeforeHook(ServiceActions, ev.Type) {
		ev.Reply = noChangeReply(root)
	}
	ev.CaseID = root.str("caseid")
	ev.CustomerID = root.str("customerrecordid", "customerid")
	ev.ConversationID = root.str(conversationKeys...)
	ev.Phone = phoneFrom(root, actionPhoneKeys, opts)
	// The hooks fire as the action happens, and their documents give no
	// time of the action: referenceDate is the case's, shared by every hook
	// of the case, and the appointment's times say when it is booked for,
	// not when it was booked. So the receipt time (nil here) dates the
	// hook, unless a sender adds a timestamp of its own.
	ev.OccurredAt = firstTime(root, "timestamp")

	// Kiosks and the S2S API trigger hooks with no user; then there is no
	// actor rather than an empty one.
	if id, email := root.str("triggeredbyuserid"), root.str("triggeredbyuseremail"); id != "" || email != "" {
		ev.Actor = &Actor{ID: id, Email: email}
		ev.AgentID = id
	}

	var notes []string
	if s := root.str("status"); s != "" {
		notes = append(notes, "status "+clip(s, summaryPartLen))
	}
	if t := ticketText(root.obj("ticket")); t != "" {
		notes = append(notes, "ticket "+t)
	}
	if appt := parseTime(root.obj("appointment").get("timeutc")); appt != nil {
		at := appt.Format(time.RFC3339)
		notes = append(notes, "appointment "+at)
		if strings.HasSuffix(ev.Type, "book-appointment") {
			ev.Changes = append(ev.Changes, Change{Field: "appointment", To: at})
		}
	}
	ev.Summary = humanize(ev.Type) + by(ev.Actor)
	if len(notes) > 0 {
		ev.Summary += " (" + strings.Join(notes, ", ") + ")"
	}
}

// ticketText joins the ticket's prefix, number and suffix ("A" 42 "" -> "A42").
func ticketText(t *value) string {
	if t == nil {
		return ""
	}
	s := t.str("prefix") + t.str("number") + t.str("suffix")
	return clip(s, 20)
}

// firstTime returns the first of the named members that parses as a time.
func firstTime(o *value, names ...string) *time.Time {
	for _, n := range names {
		if t := parseTime(o.get(n)); t != nil {
			return t
		}
	}
	return nil
}

// phoneFrom returns the first of the named members that normalises to a
// phone number.
func phoneFrom(o *value, names []string, opts Options) string {
	for _, n := range names {
		if s := scalarText(o.get(n)); s != "" {
			if p, ok := NormalizePhone(s, opts.DefaultCountryCode); ok {
				return p
			}
		}
	}
	return ""
}
