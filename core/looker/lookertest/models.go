package lookertest

import "encoding/json"

// The types below are the fake's own JSON models, written from the Swagger 2
// definitions of the same names. They carry the properties a provisioning
// client can observe; others are left out rather than faked.

// User is the spec's User as the fake answers it, and what the inspection
// methods return.
type User struct {
	ID                         string             `json:"id"`
	FirstName                  string             `json:"first_name"`
	LastName                   string             `json:"last_name"`
	DisplayName                string             `json:"display_name"`
	Email                      string             `json:"email"` // null on the wire when empty
	IsDisabled                 bool               `json:"is_disabled"`
	Locale                     *string            `json:"locale"`
	HomeFolderID               *string            `json:"home_folder_id"`
	PersonalFolderID           *string            `json:"personal_folder_id"`
	ModelsDirValidated         *bool              `json:"models_dir_validated"`
	UIState                    map[string]string  `json:"ui_state"`
	CanManageAPI3Creds         bool               `json:"can_manage_api3_creds"`
	RoleIDs                    []string           `json:"role_ids"`
	GroupIDs                   []string           `json:"group_ids"`
	CredentialsEmail           *CredentialsEmail  `json:"credentials_email"`
	CredentialsEmbed           []CredentialsEmbed `json:"credentials_embed"`
	CredentialsGoogle          *CredentialsGoogle `json:"credentials_google"`
	CredentialsSAML            *struct{}          `json:"credentials_saml"` // never set; Looker always sends the key
	CredentialsOIDC            *struct{}          `json:"credentials_oidc"` // never set; Looker always sends the key
	CredentialsLDAP            *struct{}          `json:"credentials_ldap"` // never set; Looker always sends the key
	CredentialsAPI3            []struct{}         `json:"credentials_api3"`
	Sessions                   []struct{}         `json:"sessions"`
	VerifiedLookerEmployee     bool               `json:"verified_looker_employee"`
	RolesExternallyManaged     bool               `json:"roles_externally_managed"`
	AllowDirectRoles           bool               `json:"allow_direct_roles"`
	AllowNormalGroupMembership bool               `json:"allow_normal_group_membership"`
	AllowRolesFromNormalGroups bool               `json:"allow_roles_from_normal_groups"`
	IsServiceAccount           bool               `json:"is_service_account"`
	IsIAMAdmin                 bool               `json:"is_iam_admin"`
	AvatarURL                  string             `json:"avatar_url"`
	URL                        string             `json:"url"`
}

// MarshalJSON sends email as null when the user has none, as Looker does,
// while keeping User.Email a plain string for assertions.
func (u User) MarshalJSON() ([]byte, error) {
	type plain User
	var email *string
	if u.Email != "" {
		email = &u.Email
	}
	return json.Marshal(struct {
		plain
		Email *string `json:"email"`
	}{plain(u), email})
}

// CredentialsEmail is the spec's CredentialsEmail (email/password login).
type CredentialsEmail struct {
	Email                          string  `json:"email"`
	CreatedAt                      string  `json:"created_at"`
	LoggedInAt                     *string `json:"logged_in_at"`
	IsDisabled                     bool    `json:"is_disabled"`
	ForcedPasswordResetAtNextLogin bool    `json:"forced_password_reset_at_next_login"`
	UserID                         string  `json:"user_id"`
	PasswordResetURL               *string `json:"password_reset_url"`
	AccountSetupURL                *string `json:"account_setup_url"`
	PasswordResetURLExpired        bool    `json:"password_reset_url_expired"`
	AccountSetupURLExpired         bool    `json:"account_setup_url_expired"`
	Type                           string  `json:"type"`
	URL                            string  `json:"url"`
	UserURL                        string  `json:"user_url"`
}

// CredentialsEmbed is the spec's CredentialsEmbed (signed-embed identity).
type CredentialsEmbed struct {
	ID              string  `json:"id"`
	ExternalUserID  string  `json:"external_user_id"`
	ExternalGroupID *string `json:"external_group_id"`
	CreatedAt       string  `json:"created_at"`
	LoggedInAt      *string `json:"logged_in_at"`
	IsDisabled      bool    `json:"is_disabled"`
	Type            string  `json:"type"`
	URL             string  `json:"url"`
}

// CredentialsGoogle carries the identity-provider email of users that exist
// only through SSO, which is the only kind of user on Looker (Google Cloud core).
type CredentialsGoogle struct {
	Email        string  `json:"email"`
	GoogleUserID string  `json:"google_user_id"`
	Domain       string  `json:"domain"`
	CreatedAt    string  `json:"created_at"`
	LoggedInAt   *string `json:"logged_in_at"`
	IsDisabled   bool    `json:"is_disabled"`
	Type         string  `json:"type"`
}

type userPublic struct {
	ID          string `json:"id"`
	FirstName   string `json:"first_name"`
	LastName    string `json:"last_name"`
	DisplayName string `json:"display_name"`
	AvatarURL   string `json:"avatar_url"`
	URL         string `json:"url"`
}

type roleJSON struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	PermissionSet *any   `json:"permission_set"`
	ModelSet      *any   `json:"model_set"`
	URL           string `json:"url"`
	UsersURL      string `json:"users_url"`
}

type groupJSON struct {
	ID                      string  `json:"id"`
	Name                    string  `json:"name"`
	ExternalGroupID         *string `json:"external_group_id"`
	ExternallyManaged       bool    `json:"externally_managed"`
	IncludeByDefault        bool    `json:"include_by_default"`
	UserCount               int     `json:"user_count"`
	CanAddToContentMetadata bool    `json:"can_add_to_content_metadata"`
	ContainsCurrentUser     bool    `json:"contains_current_user"`
}

type userAttributeJSON struct {
	ID            string  `json:"id"`
	Name          string  `json:"name"`
	Label         string  `json:"label"`
	Type          string  `json:"type"`
	DefaultValue  *string `json:"default_value"`
	IsSystem      bool    `json:"is_system"`
	IsPermanent   bool    `json:"is_permanent"`
	ValueIsHidden bool    `json:"value_is_hidden"`
	UserCanView   bool    `json:"user_can_view"`
	UserCanEdit   bool    `json:"user_can_edit"`
}

type userAttributeWithValueJSON struct {
	Name            string  `json:"name"`
	Label           string  `json:"label"`
	Rank            *int    `json:"rank"`
	Value           *string `json:"value"`
	UserID          string  `json:"user_id"`
	UserCanEdit     bool    `json:"user_can_edit"`
	ValueIsHidden   bool    `json:"value_is_hidden"`
	UserAttributeID string  `json:"user_attribute_id"`
	Source          *string `json:"source"`
}

type accessToken struct {
	AccessToken  string  `json:"access_token"`
	TokenType    string  `json:"token_type"`
	ExpiresIn    int64   `json:"expires_in"`
	RefreshToken *string `json:"refresh_token"`
}

type apiError struct {
	Message          string `json:"message"`
	DocumentationURL string `json:"documentation_url"`
}

type validationError struct {
	Message          string                  `json:"message"`
	Errors           []validationErrorDetail `json:"errors"`
	DocumentationURL string                  `json:"documentation_url"`
}

type validationErrorDetail struct {
	Field            string `json:"field"`
	Code             string `json:"code"`
	Message          string `json:"message"`
	DocumentationURL string `json:"documentation_url"`
}
