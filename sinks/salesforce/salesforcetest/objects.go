package salesforcetest

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
)

// ObjectDescribe is the subset of a Salesforce sObject describe result
// (GET /sobjects/{name}/describe) that the emulator uses. Unknown keys in
// a pasted describe file are ignored.
type ObjectDescribe struct {
	Name      string          `json:"name"`
	Label     string          `json:"label,omitempty"`
	KeyPrefix string          `json:"keyPrefix,omitempty"`
	Custom    bool            `json:"custom,omitempty"`
	Fields    []FieldDescribe `json:"fields"`
}

// FieldDescribe is one entry of an sObject describe's "fields" array
// (contract §7).
type FieldDescribe struct {
	Name                  string          `json:"name"`
	Label                 string          `json:"label,omitempty"`
	Type                  string          `json:"type"`
	Length                int             `json:"length"`
	Nillable              bool            `json:"nillable"`
	Createable            bool            `json:"createable"`
	Updateable            bool            `json:"updateable"`
	DefaultedOnCreate     bool            `json:"defaultedOnCreate"`
	ExternalID            bool            `json:"externalId"`
	IDLookup              bool            `json:"idLookup"`
	Unique                bool            `json:"unique"`
	CaseSensitive         bool            `json:"caseSensitive"`
	RestrictedPicklist    bool            `json:"restrictedPicklist"`
	ReferenceTo           []string        `json:"referenceTo"`
	RelationshipName      string          `json:"relationshipName"`
	PolymorphicForeignKey bool            `json:"polymorphicForeignKey"`
	PicklistValues        []PicklistValue `json:"picklistValues"`
}

// PicklistValue is one allowed value of a picklist field.
type PicklistValue struct {
	Active       bool   `json:"active"`
	DefaultValue bool   `json:"defaultValue"`
	Label        string `json:"label"`
	Value        string `json:"value"`
}

// UnmarshalJSON accepts "relationshipName": null as well as a string.
func (f *FieldDescribe) UnmarshalJSON(b []byte) error {
	type plain FieldDescribe
	var aux struct {
		plain
		RelationshipName *string `json:"relationshipName"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	*f = FieldDescribe(aux.plain)
	if aux.RelationshipName != nil {
		f.RelationshipName = *aux.RelationshipName
	}
	return nil
}

// LoadObjects reads sObject describe output from path. The file may hold a
// single describe result ({"name":..,"fields":[..]}), a JSON array of them,
// or an object with an "sobjects" array of them (as produced by pasting
// several describe calls together).
func LoadObjects(path string) ([]ObjectDescribe, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load objects: %w", err)
	}
	objs, err := ParseObjects(b)
	if err != nil {
		return nil, fmt.Errorf("load objects %s: %w", path, err)
	}
	return objs, nil
}

// ParseObjects decodes describe output in any of the shapes LoadObjects
// accepts.
func ParseObjects(b []byte) ([]ObjectDescribe, error) {
	trimmed := strings.TrimSpace(string(b))
	var objs []ObjectDescribe
	switch {
	case strings.HasPrefix(trimmed, "["):
		if err := json.Unmarshal(b, &objs); err != nil {
			return nil, fmt.Errorf("decode describe array: %w", err)
		}
	case strings.HasPrefix(trimmed, "{"):
		var probe struct {
			SObjects []ObjectDescribe `json:"sobjects"`
			ObjectDescribe
		}
		if err := json.Unmarshal(b, &probe); err != nil {
			return nil, fmt.Errorf("decode describe object: %w", err)
		}
		if probe.SObjects != nil {
			objs = probe.SObjects
		} else {
			objs = []ObjectDescribe{probe.ObjectDescribe}
		}
	default:
		return nil, fmt.Errorf("describe output must be a JSON object or array")
	}
	for i, o := range objs {
		if o.Name == "" {
			return nil, fmt.Errorf("object %d has no name", i)
		}
		if len(o.Fields) == 0 {
			return nil, fmt.Errorf("object %s has no fields", o.Name)
		}
	}
	return objs, nil
}

// object is the compiled, indexed form of an ObjectDescribe.
type object struct {
	desc      ObjectDescribe
	prefix    string
	fields    map[string]*FieldDescribe // lower-case name → field
	rels      map[string]*FieldDescribe // lower-case relationshipName → reference field
	indexed   []*FieldDescribe          // fields with an index (idLookup, externalId or unique)
	required  []*FieldDescribe          // required on insert
	fieldList []*FieldDescribe
	pos       map[*FieldDescribe]uint32 // field → index in fieldList (records store indexes)
	store     *objStore                 // the server's records of this object (guarded by Server.mu)
}

func compileObject(d ObjectDescribe, prefix string) *object {
	if !slices.ContainsFunc(d.Fields, func(f FieldDescribe) bool { return strings.EqualFold(f.Name, "SystemModstamp") }) {
		// Every object has it; the emulator maintains it on every write.
		d.Fields = append(slices.Clip(d.Fields), fSystem("SystemModstamp", "System Modstamp", "datetime"))
	}
	o := &object{
		desc:   d,
		prefix: prefix,
		fields: make(map[string]*FieldDescribe, len(d.Fields)),
		rels:   make(map[string]*FieldDescribe),
		pos:    make(map[*FieldDescribe]uint32, len(d.Fields)),
	}
	for i := range d.Fields {
		f := &o.desc.Fields[i]
		if f.Label == "" {
			f.Label = f.Name
		}
		o.pos[f] = uint32(len(o.fieldList))
		o.fieldList = append(o.fieldList, f)
		o.fields[strings.ToLower(f.Name)] = f
		if f.RelationshipName != "" && f.Type == "reference" {
			o.rels[strings.ToLower(f.RelationshipName)] = f
		}
		if !strings.EqualFold(f.Name, "Id") && (f.IDLookup || f.ExternalID || f.Unique) {
			o.indexed = append(o.indexed, f)
		}
		if f.Createable && !f.Nillable && !f.DefaultedOnCreate {
			o.required = append(o.required, f)
		}
	}
	if o.desc.Label == "" {
		o.desc.Label = d.Name
	}
	o.desc.KeyPrefix = prefix
	return o
}

func isPolymorphic(f *FieldDescribe) bool {
	return f.PolymorphicForeignKey || len(f.ReferenceTo) >= 2
}

func picklist(values ...string) []PicklistValue {
	out := make([]PicklistValue, len(values))
	for i, v := range values {
		out[i] = PicklistValue{Active: true, Label: v, Value: v}
	}
	return out
}

// Field constructors used by the built-in catalog.
func fID() FieldDescribe {
	return FieldDescribe{Name: "Id", Label: "Record ID", Type: "id", Length: 18, DefaultedOnCreate: true, IDLookup: true}
}

func fStr(name, label string, length int) FieldDescribe {
	return FieldDescribe{Name: name, Label: label, Type: "string", Length: length, Nillable: true, Createable: true, Updateable: true}
}

func fReq(f FieldDescribe) FieldDescribe { f.Nillable = false; return f }

func fTyped(name, label, typ string, length int) FieldDescribe {
	f := fStr(name, label, length)
	f.Type = typ
	return f
}

func fExt(name, label string) FieldDescribe {
	f := fStr(name, label, 40)
	f.ExternalID, f.IDLookup, f.Unique = true, true, true
	return f
}

func fPick(name, label string, restricted bool, values ...string) FieldDescribe {
	f := fTyped(name, label, "picklist", 255)
	f.RestrictedPicklist = restricted
	f.PicklistValues = picklist(values...)
	return f
}

func fRef(name, label, rel string, to ...string) FieldDescribe {
	f := fTyped(name, label, "reference", 18)
	f.RelationshipName = rel
	f.ReferenceTo = to
	f.PolymorphicForeignKey = len(to) > 1
	return f
}

func fOwner(to ...string) FieldDescribe {
	f := fRef("OwnerId", "Owner ID", "Owner", to...)
	f.Nillable, f.DefaultedOnCreate = false, true
	return f
}

func fSystem(name, label, typ string) FieldDescribe {
	return FieldDescribe{Name: name, Label: label, Type: typ, DefaultedOnCreate: true}
}

var industries = []string{"Agriculture", "Apparel", "Banking", "Biotechnology", "Chemicals", "Communications",
	"Construction", "Consulting", "Education", "Electronics", "Energy", "Engineering", "Entertainment",
	"Environmental", "Finance", "Food & Beverage", "Government", "Healthcare", "Hospitality", "Insurance",
	"Machinery", "Manufacturing", "Media", "Not For Profit", "Recreation", "Retail", "Shipping", "Technology",
	"Telecommunications", "Transportation", "Utilities", "Other"}

var leadSources = []string{"Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other"}

// DefaultObjects returns the built-in catalog: User, Group, Account,
// Contact, Lead and Opportunity with realistic required fields, lengths,
// picklists, lookups and the custom external-id fields External_Id__c and
// Legacy_Id__c (externalId, idLookup, unique) on Account, Contact, Lead and
// Opportunity. Account.Industry is a restricted picklist.
func DefaultObjects() []ObjectDescribe {
	boolField := func(name, label string) FieldDescribe {
		f := fTyped(name, label, "boolean", 0)
		f.Nillable, f.DefaultedOnCreate = false, true
		return f
	}
	email := fTyped("Email", "Email", "email", 80)
	email.IDLookup = true
	username := fReq(fStr("Username", "Username", 80))
	username.IDLookup, username.Unique = true, true
	devName := fReq(fStr("DeveloperName", "Developer Name", 80))
	devName.IDLookup = true
	return []ObjectDescribe{
		{Name: "User", Label: "User", KeyPrefix: "005", Fields: []FieldDescribe{
			fID(), username, fStr("FirstName", "First Name", 40), fReq(fStr("LastName", "Last Name", 80)),
			email, fTyped("IsActive", "Active", "boolean", 0),
		}},
		{Name: "Group", Label: "Group", KeyPrefix: "00G", Fields: []FieldDescribe{
			fID(), fReq(fStr("Name", "Name", 40)), devName,
			fPick("Type", "Type", true, "Regular", "Role", "Queue"),
		}},
		{Name: "Account", Label: "Account", KeyPrefix: "001", Fields: []FieldDescribe{
			fID(),
			fReq(fStr("Name", "Account Name", 255)),
			fStr("AccountNumber", "Account Number", 40),
			fPick("Type", "Account Type", false, "Prospect", "Customer - Direct", "Customer - Channel",
				"Channel Partner / Reseller", "Installation Partner", "Technology Partner", "Other"),
			fPick("Industry", "Industry", true, industries...),
			fPick("Rating", "Account Rating", false, "Hot", "Warm", "Cold"),
			fTyped("AnnualRevenue", "Annual Revenue", "currency", 0),
			fTyped("NumberOfEmployees", "Employees", "int", 0),
			fTyped("Phone", "Account Phone", "phone", 40),
			fTyped("Website", "Website", "url", 255),
			fTyped("BillingStreet", "Billing Street", "textarea", 255),
			fStr("BillingCity", "Billing City", 40),
			fStr("BillingState", "Billing State/Province", 80),
			fStr("BillingPostalCode", "Billing Zip/Postal Code", 20),
			fStr("BillingCountry", "Billing Country", 80),
			fTyped("Description", "Account Description", "textarea", 32000),
			fRef("ParentId", "Parent Account ID", "Parent", "Account"),
			fOwner("User"),
			fTyped("SLAExpirationDate__c", "SLA Expiration Date", "date", 0),
			fTyped("Last_Sync__c", "Last Sync", "datetime", 0),
			boolField("Active__c", "Active"),
			fExt("External_Id__c", "External Id"),
			fExt("Legacy_Id__c", "Legacy Id"),
			fSystem("CreatedDate", "Created Date", "datetime"),
			fSystem("IsDeleted", "Deleted", "boolean"),
		}},
		{Name: "Contact", Label: "Contact", KeyPrefix: "003", Fields: []FieldDescribe{
			fID(),
			fPick("Salutation", "Salutation", false, "Mr.", "Ms.", "Mrs.", "Dr.", "Prof."),
			fStr("FirstName", "First Name", 40),
			fReq(fStr("LastName", "Last Name", 80)),
			email,
			fTyped("Phone", "Business Phone", "phone", 40),
			fStr("Title", "Title", 128),
			fTyped("Birthdate", "Birthdate", "date", 0),
			fRef("AccountId", "Account ID", "Account", "Account"),
			fRef("ReportsToId", "Reports To ID", "ReportsTo", "Contact"),
			fOwner("User"),
			fPick("LeadSource", "Lead Source", false, leadSources...),
			fTyped("MailingStreet", "Mailing Street", "textarea", 255),
			fStr("MailingCity", "Mailing City", 40),
			fStr("MailingPostalCode", "Mailing Zip/Postal Code", 20),
			fStr("MailingCountry", "Mailing Country", 80),
			boolField("HasOptedOutOfEmail", "Email Opt Out"),
			fExt("External_Id__c", "External Id"),
			fExt("Legacy_Id__c", "Legacy Id"),
			fSystem("CreatedDate", "Created Date", "datetime"),
			fSystem("IsDeleted", "Deleted", "boolean"),
		}},
		{Name: "Lead", Label: "Lead", KeyPrefix: "00Q", Fields: []FieldDescribe{
			fID(),
			fStr("FirstName", "First Name", 40),
			fReq(fStr("LastName", "Last Name", 80)),
			fReq(fStr("Company", "Company", 255)),
			email,
			fTyped("Phone", "Phone", "phone", 40),
			func() FieldDescribe {
				f := fPick("Status", "Status", true, "Open - Not Contacted", "Working - Contacted",
					"Closed - Converted", "Closed - Not Converted")
				f.Nillable, f.DefaultedOnCreate = false, true
				return f
			}(),
			fPick("LeadSource", "Lead Source", false, leadSources...),
			fPick("Industry", "Industry", false, industries...),
			fTyped("AnnualRevenue", "Annual Revenue", "currency", 0),
			fTyped("NumberOfEmployees", "Employees", "int", 0),
			fOwner("Group", "User"),
			fExt("External_Id__c", "External Id"),
			fSystem("CreatedDate", "Created Date", "datetime"),
			fSystem("IsDeleted", "Deleted", "boolean"),
		}},
		{Name: "Opportunity", Label: "Opportunity", KeyPrefix: "006", Fields: []FieldDescribe{
			fID(),
			fReq(fStr("Name", "Name", 120)),
			fRef("AccountId", "Account ID", "Account", "Account"),
			fReq(fPick("StageName", "Stage", true, "Prospecting", "Qualification", "Needs Analysis",
				"Value Proposition", "Id. Decision Makers", "Perception Analysis", "Proposal/Price Quote",
				"Negotiation/Review", "Closed Won", "Closed Lost")),
			fReq(fTyped("CloseDate", "Close Date", "date", 0)),
			fTyped("Amount", "Amount", "currency", 0),
			fTyped("Probability", "Probability (%)", "percent", 0),
			fPick("Type", "Opportunity Type", false, "Existing Customer - Upgrade",
				"Existing Customer - Replacement", "Existing Customer - Downgrade", "New Customer"),
			fPick("LeadSource", "Lead Source", false, leadSources...),
			fTyped("Description", "Description", "textarea", 32000),
			fOwner("User"),
			fExt("External_Id__c", "External Id"),
			fSystem("CreatedDate", "Created Date", "datetime"),
			fSystem("IsDeleted", "Deleted", "boolean"),
		}},
	}
}

// compileCatalog indexes the objects and assigns key prefixes to objects
// that have none (custom objects get a0A, a0B, ...).
func compileCatalog(descs []ObjectDescribe) (map[string]*object, []*object, error) {
	byName := make(map[string]*object, len(descs))
	used := map[string]bool{"750": true, "005": true, "00D": true}
	var pending []ObjectDescribe
	for _, d := range descs {
		if d.KeyPrefix != "" {
			if len(d.KeyPrefix) != 3 || !isAlnum(d.KeyPrefix) {
				return nil, nil, fmt.Errorf("object %s: keyPrefix %q must be 3 alphanumeric characters", d.Name, d.KeyPrefix)
			}
			used[d.KeyPrefix] = true
		}
	}
	next := 10
	for _, d := range descs {
		prefix := d.KeyPrefix
		if prefix == "" {
			for {
				prefix = "a0" + string(base62[next%62])
				next++
				if !used[prefix] {
					break
				}
			}
			used[prefix] = true
		}
		k := strings.ToLower(d.Name)
		if _, dup := byName[k]; dup {
			pending = append(pending, d)
			continue
		}
		byName[k] = compileObject(d, prefix)
	}
	if len(pending) > 0 {
		return nil, nil, fmt.Errorf("object %s described twice", pending[0].Name)
	}
	// Make sure the emulator's own user object exists so OwnerId lookups
	// and /sobjects/User/{id} work with a pasted catalog.
	if _, ok := byName["user"]; !ok {
		for _, d := range DefaultObjects() {
			if d.Name == "User" {
				byName["user"] = compileObject(d, "005")
			}
		}
	}
	list := make([]*object, 0, len(byName))
	for _, o := range byName {
		list = append(list, o)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].desc.Name < list[j].desc.Name })
	return byName, list, nil
}
