package eligibility

import (
	"strings"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// Address is an e-mail address as the rules see it.
type Address struct {
	// Normalized is the address one person has, however they write it:
	// lower case, no surrounding space, no +tag, and for Gmail no dots
	// in the local part and gmail.com for googlemail.com.
	Normalized string
	// Host is the address's domain, lower case, in its ASCII form.
	Host string
	// Company is the registrable domain of Host (its public suffix plus
	// one label): mail.eu.acme.co.uk and acme.co.uk are one company.
	Company string
}

// gmailHosts deliver to one mailbox whatever dots the local part has.
var gmailHosts = map[string]bool{"gmail.com": true, "googlemail.com": true}

// Normalize returns what the rules count for email, a valid address.
func Normalize(email string) Address {
	email = strings.ToLower(strings.TrimSpace(email))
	at := strings.LastIndex(email, "@")
	local, host := email[:max(at, 0)], strings.TrimSuffix(email[at+1:], ".")
	if ascii, err := idna.Lookup.ToASCII(host); err == nil {
		host = ascii
	}
	if tag := strings.IndexByte(local, '+'); tag > 0 {
		local = local[:tag]
	}
	if gmailHosts[host] {
		local, host = strings.ReplaceAll(local, ".", ""), "gmail.com"
	}
	company, err := publicsuffix.EffectiveTLDPlusOne(host)
	if err != nil {
		company = host // a bare public suffix, or an address at localhost
	}
	return Address{Normalized: local + "@" + host, Host: host, Company: company}
}
